"""Why the SQLite backend runs each transaction in one thread hop (bench/README.md).

    python bench/sessions_sqlite_driver.py   (pip install aiosqlite for the comparison)

A turn commit is a handful of statements in one write transaction. This runs a
transaction of the same shape (5 indexed reads, one 200-byte insert, ``BEGIN IMMEDIATE`` …
``COMMIT``) 2,000 times three ways: the stdlib ``sqlite3`` running the whole transaction in
one hop to a worker thread (what ``SqliteStore`` does), and ``aiosqlite`` awaiting every
statement (one hop each), with ``synchronous=NORMAL`` and ``FULL``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

N = 2000
READS = 5


def _setup(path: str) -> None:
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE IF NOT EXISTS t (a INTEGER PRIMARY KEY, b BLOB)")
    c.close()


async def one_hop(path: str, sync: str) -> float:
    pool = ThreadPoolExecutor(1)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA synchronous={sync}")

    def tx() -> None:
        conn.execute("BEGIN IMMEDIATE")
        for j in range(READS):
            conn.execute("SELECT b FROM t WHERE a = ?", (j,)).fetchone()
        conn.execute("INSERT INTO t (b) VALUES (?)", (b"x" * 200,))
        conn.execute("COMMIT")

    loop = asyncio.get_running_loop()
    t = time.perf_counter()
    for _ in range(N):
        await loop.run_in_executor(pool, tx)
    elapsed = time.perf_counter() - t
    conn.close()
    pool.shutdown()
    return elapsed / N * 1e6


async def per_statement(path: str, sync: str) -> float | None:
    try:
        import aiosqlite
    except ImportError:
        return None
    async with aiosqlite.connect(path, isolation_level=None) as c:
        await c.execute(f"PRAGMA synchronous={sync}")
        t = time.perf_counter()
        for _ in range(N):
            await c.execute("BEGIN IMMEDIATE")
            for j in range(READS):
                cur = await c.execute("SELECT b FROM t WHERE a = ?", (j,))
                await cur.fetchone()
            await c.execute("INSERT INTO t (b) VALUES (?)", (b"x" * 200,))
            await c.execute("COMMIT")
        return (time.perf_counter() - t) / N * 1e6


async def main() -> None:
    print("| synchronous | stdlib sqlite3, one hop per transaction | aiosqlite, one hop per "
          "statement |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for sync in ("NORMAL", "FULL"):
            path = os.path.join(tmp, f"{sync}.db")
            _setup(path)
            a = await one_hop(path, sync)
            b = await per_statement(path, sync)
            print(f"| {sync} | {a:.0f} µs | " + (f"{b:.0f} µs |" if b else "(not installed) |"))


if __name__ == "__main__":
    asyncio.run(main())

"""The SQLite backend's usage ledger writer: its own connection on its own thread, and a
batch written in slices, one thread hop each.

Why (issue 17, measured in bench/README.md, "The usage ledger's writes and the event
loop"): one ``executemany`` of a second's rows ran for several milliseconds on the store's
executor thread. It holds the GIL while binding each row and gives it up in each row's
``sqlite3_step``, so the event loop, woken by a request, waited for the GIL, and on a
worker with one core, for the CPU: the requests that arrived during a write were late,
which is the default configuration's p99. Now a thread hop writes at most ``SLICE`` rows;
the thread then waits for the loop to hand it the next slice, so the loop is never held up
for longer than one slice. The slices of one batch are still one transaction
(``BEGIN IMMEDIATE`` with the first, ``COMMIT`` with the last: durable when ``append``
returns, as before), on a connection and thread of its own, so the sessions store's
calls never queue behind a ledger write in the store's pool.

A slice is one ``INSERT … VALUES (…), (…), …`` statement of all its rows (one bind of
every value, one ``sqlite3_step`` with the GIL released), not an ``executemany`` of one
statement per row; and ``None`` and ``bool`` values bind through adapters registered for
their types. Both measured per row with callgrind (bench/README.md, "Metrics tallied per
label set, and a cheaper ledger row"): 43.6k instructions with ``executemany``, 35.1k
with the adapters, 29.2k as one statement with them.

The thread keeps normal priority. At idle priority (``SCHED_IDLE`` or nice 19) it would
only take the time the loop leaves idle, but it holds the GIL while it binds a slice's
values: starved by other work on its core right then, it stalls the loop, which waits for
the GIL (bench/ledger_lag.py, loaded machine: the loop's p90 delay during writes 29-33 ms
against 1.8-2.6 ms at normal priority; bench/README.md, "The ledger writer's priority and
its cost per row").
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .ledger_inserts import SLICE, LedgerInserts
from .usage import UsageValues

__all__ = ["SLICE", "SqliteLedger"]


class SqliteLedger:
    def __init__(self, connect: Callable[[], sqlite3.Connection], insert_sql: str) -> None:
        self._inserts = LedgerInserts(connect, insert_sql)
        self._write = self._inserts.write
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="dragoman-ledger")

    async def append(self, rows: list[UsageValues]) -> None:
        """Insert ``rows`` in one transaction, committed when this returns."""
        loop = asyncio.get_running_loop()
        n = len(rows)
        for start in range(0, n, SLICE):
            end = start + SLICE
            await loop.run_in_executor(self._pool, self._write, rows[start:end],
                                       start == 0, end >= n)

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def close(self) -> None:
        """Wait for a write under way, then close the connection (any thread)."""
        self._pool.shutdown(wait=True)
        self._inserts.close()

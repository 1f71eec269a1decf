"""The usage ledger's inserts into SQLite, synchronous, on a connection of their own: a
batch in slices of ``SLICE`` rows, each one multi-row ``INSERT``, all in one transaction.
Run from the gateway's thread (``sqlite_ledger``, a slice per thread hop) or from the
writer process (``ledger_writer``, a batch at once). Imports nothing of the gateway, so
the writer process starts quickly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from itertools import chain
from pathlib import Path
from typing import cast

#: Rows per thread hop: a few hundred µs of SQLite's work, the longest the loop waits for
#: the writer (bench/ledger_lag.py: the loop's delay during writes falls with the slice,
#: p90 2.1 ms at 400 rows, 1.1 at 100, 0.8-1.0 at 50, 0.8 at 25; each hop costs the loop
#: a wake-up).
SLICE = 50

# sqlite3 adapts every parameter that is not exactly an int, float, str or bytearray: for
# ``None`` and ``bool`` it looks for an adapter of their type and, finding none, asks the
# protocol type and the value for ``__adapt__`` and ``__conform__``, two failed attribute
# look-ups that each format an AttributeError (~3k instructions a value, ~8k per ledger row
# with its NULL times and its boolean). Registered, the adapter is found at the first look-up
# and binds what sqlite3 binds anyway: NULL for None (``{}.get(None)`` is None, a C call),
# 0 or 1 for a bool. (Process-wide: every sqlite3 connection binds these the same way.)
sqlite3.register_adapter(type(None), cast("Callable[[None], None]", {}.get))
sqlite3.register_adapter(bool, int)


def connect(path: Path | str, busy_timeout: float) -> sqlite3.Connection:
    """A connection to the sessions database as every writer of it opens one (the store's
    pool threads, the ledger's thread, the ledger's writer process)."""
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None,
                           check_same_thread=False)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class LedgerInserts:
    """The ledger's inserts on one connection, synchronous: a batch's slices, each one
    multi-row ``INSERT``, in one transaction. Used from the thread (``SqliteLedger``, a
    slice per hop) and from the writer process (``ledger_writer``, a batch at once)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], insert_sql: str) -> None:
        self._connect = connect
        self._conn: sqlite3.Connection | None = None
        head, one = insert_sql.split(" VALUES ")  # (one row's placeholders, numbered)
        self._head = head + " VALUES "
        self._one = "(" + ", ".join(["?"] * one.count("?")) + ")"
        self._inserts: dict[int, str] = {}

    def batch(self, rows: Sequence[Sequence[object]]) -> None:
        """Insert ``rows`` in one transaction, committed when this returns."""
        n = len(rows)
        for start in range(0, n, SLICE):
            end = start + SLICE
            self.write(rows[start:end], start == 0, end >= n)

    def open(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            conn = self._conn = self._connect()
        return conn

    def write(self, rows: Sequence[Sequence[object]], first: bool, last: bool) -> None:
        conn = self.open()
        try:
            if first:
                if conn.in_transaction:  # a batch abandoned half-way (its task cancelled)
                    conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
            conn.execute(self._insert(len(rows)), tuple(chain.from_iterable(rows)))
            if last:
                conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _insert(self, n: int) -> str:
        """The statement inserting ``n`` rows (sqlite3 keeps it compiled in its statement
        cache: at most ``SLICE`` of them)."""
        sql = self._inserts.get(n)
        if sql is None:
            sql = self._inserts[n] = self._head + ", ".join([self._one] * n)
        return sql

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

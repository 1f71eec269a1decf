"""The usage ledger's row inserts into SQLite, synchronous: rows in slices of ``SLICE``,
each one multi-row ``INSERT``, inside the caller's transaction. Run by the fold of staged
batches (``ledger_staging``: in the writer process, the ledger's thread or a reader's
connection). Imports nothing of the gateway, so the writer process starts quickly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from itertools import chain
from pathlib import Path
from typing import cast

#: Rows per ``INSERT`` statement (50 rows x 19 values: under SQLite's old 999-variable
#: limit; 100 saved 0.24k instructions a row, bench/README.md, "A usage-ledger row for
#: less"). It was also the rows per thread hop of the thread writer before batches were
#: staged (bench/ledger_lag.py: the loop's delay during writes fell with the slice).
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


class RowInserts:
    """The ledger's row inserts, in slices of ``SLICE`` rows, each one multi-row
    ``INSERT``, on a connection whose transaction the caller holds (the fold,
    ``ledger_staging``)."""

    def __init__(self, insert_sql: str) -> None:
        head, one = insert_sql.split(" VALUES ")  # (one row's placeholders, numbered)
        self._head = head + " VALUES "
        self._one = "(" + ", ".join(["?"] * one.count("?")) + ")"
        self._inserts: dict[int, str] = {}

    def insert(self, conn: sqlite3.Connection, rows: Sequence[Sequence[object]]) -> None:
        for start in range(0, len(rows), SLICE):
            part = rows[start:start + SLICE]
            conn.execute(self._insert(len(part)), tuple(chain.from_iterable(part)))

    def _insert(self, n: int) -> str:
        """The statement inserting ``n`` rows (sqlite3 keeps it compiled in its statement
        cache: at most ``SLICE`` of them)."""
        sql = self._inserts.get(n)
        if sql is None:
            sql = self._inserts[n] = self._head + ", ".join([self._one] * n)
        return sql

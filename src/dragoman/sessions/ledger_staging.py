"""The SQLite usage ledger's batches staged as they come, folded into ``usage_ledger`` later.

Why (bench/README.md, "The ledger's batches staged, folded when quiet"): session 9's
diagnostics placed the added p99 of a gateway with the ledger on in its writer's row
inserts on the gateway's core (19 values bound per row, the ``ts`` index updated). Staged,
the writer's work per row while batches come is ~1.5k instructions instead of ~25.7k
(what was left of the p99 was the writer's catch-ups and a fold after one small batch:
bench/README.md, "One ledger batch a second"). So a batch is now written as it was
received: a row of ``usage_staged`` per part of it (``ledger_parts``: the msgpack frame of
up to 500 rows, not decoded), all committed in one transaction before the writer answers,
as durable as before. The rows reach ``usage_ledger`` by the **fold** (``fold_staged``),
which decodes the staged frames and inserts their rows as the writer used to, in chunks
of ``FOLD_CHUNK`` rows, one transaction each. It runs:

- in the writer (process or thread) when no batch has come for ``QUIET`` seconds, or
  right after a batch under light traffic (``LIGHT_RUN`` batches in a row of fewer than
  ``LIGHT_BATCH`` rows), chunk by chunk, a new batch staged between two chunks without
  waiting for the rest;
- in the writer, even under traffic, a chunk per batch while more than ``FOLD_BOUND``
  rows are staged;
- before every read of the ledger from SQLite (``SqliteStore.usage_rows`` /
  ``usage_groups``: the admin API, the dashboard, ``dragoman usage``), by the reader on
  its own connection, so a read sees every record appended before it;
- at start-up, when the store finds batches left staged (when quiet, as above).

The fold's work is deferred, not removed: a reader after a busy period pays for it, and a
writer starved of CPU under a long saturation leaves it growing past the bound.

**A batch is staged once** (``INSERT OR IGNORE`` on its key, ``BatchKeys``: a random id
per gateway process and a sequence number): a batch resent because its writer process died
between its ``COMMIT`` and its answer was written twice before; now the second copy is
ignored. A folded batch keeps its key (``rows = 0``, no frame) for ``KEYS_KEPT`` seconds,
long enough for any resend (they follow at once). A batch whose rows cannot be inserted
(a bug: the gateway builds them) is kept, frame and all, with its ``rows`` negated and an
error in the log, rather than blocking every fold after it.

Imports nothing of the gateway but ``usage``'s column facts and ``ledger_frames``' part
type: the writer process imports it.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence

import msgspec

from .ledger_frames import Part
from .ledger_inserts import RowInserts
from .usage import FLAGS, NULLABLE

log = logging.getLogger("dragoman.sessions")

#: Seconds without a batch after which the writer folds: twice the batch writer's interval
#: (it sends a batch every second while records wait; the SQLite store's hold up to 5,000
#: rows, ``SqliteStore.ledger_batch_rows``), so under traffic the fold waits for a pause of
#: a second or more with no request at all
QUIET = 2.0
#: After ``LIGHT_RUN`` batches in a row of fewer than ``LIGHT_BATCH`` rows each (under ~100
#: requests a second: a worker mostly idle) the writer folds right after each batch, with
#: what else is staged, rather than waiting for a pause. Not after one small batch: one
#: comes between two bursts too (bench/README.md, "One ledger batch a second")
LIGHT_BATCH = 100
LIGHT_RUN = 3
#: Staged rows past which the writer folds a chunk after each batch even under traffic
#: (disk and a reader's wait are the concern, not memory: ~100 bytes a row, and a read
#: folds them all first)
FOLD_BOUND = 100_000
#: Rows per fold transaction (at least one staged batch): ~5 ms of a core, the longest a
#: new batch waits for a quiet fold
FOLD_CHUNK = 500
#: Seconds a folded batch's key is kept, against a resend (which follows at once)
KEYS_KEPT = 60.0

STAGE_SQL = "INSERT OR IGNORE INTO usage_staged (batch, rows, ts, frame) VALUES (?, ?, ?, ?)"
STAGED_SQL = "SELECT coalesce(sum(rows), 0) FROM usage_staged WHERE rows > 0"
_CHUNK = "SELECT rowid, rows FROM usage_staged WHERE rows > 0 ORDER BY rowid"
_FRAME = "SELECT frame FROM usage_staged WHERE rowid = ?"
_FOLDED = "UPDATE usage_staged SET rows = 0, frame = NULL, ts = ? WHERE rowid <= ? AND rows > 0"
_FAILED = "UPDATE usage_staged SET rows = -rows WHERE rowid = ?"
_FORGET = "DELETE FROM usage_staged WHERE rows = 0 AND ts < ?"

# untyped: lists of msgpack's own values, nothing checked per value (a typed decoder asked
# ``isinstance`` of each ``object``: ~1k instructions a row)
_decode = msgspec.msgpack.Decoder().decode
_NAN = float("nan")
#: what a staged batch that cannot be inserted raises (its rows, not the database)
_BAD_BATCH = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError,
              sqlite3.DataError, msgspec.DecodeError, TypeError, IndexError)


class BatchKeys:
    """The keys of one gateway process's batches: a random id, then a sequence number."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8) + "-"
        self._seq = itertools.count()

    def __call__(self) -> str:
        return self._prefix + str(next(self._seq))


def _ms() -> int:
    return int(time.time() * 1000)


def plain(rows: list[list[object]]) -> list[list[object]]:
    """``rows`` with values sqlite3 binds as they are: None as NaN (which SQLite binds as
    NULL, as it does None), a bool as 0 or 1 (as its registered adapter would). Each value
    sqlite3 has to adapt costs it a key tuple built, hashed and looked up, and the
    adapter's call: ~750 instructions, ~1.7k a row after this loop's own cost
    (bench/README.md, "A usage-ledger row for less")."""
    for row in rows:
        for i in NULLABLE:
            if row[i] is None:
                row[i] = _NAN
        for i in FLAGS:
            row[i] = 1 if row[i] else 0
    return rows


def fold_staged(conn: sqlite3.Connection, inserts: RowInserts, max_rows: int) -> int:
    """Move the oldest staged batches, at least one and about ``max_rows`` rows, into
    ``usage_ledger``, inside the caller's write transaction; the staged batches each
    took (or could not take) are left as keys. Returns how many batches it took: 0 when
    none was staged."""
    taken: list[tuple[int, int]] = []
    total = 0
    cur = conn.execute(_CHUNK)
    for rowid, n in cur:
        taken.append((rowid, n))
        total += n
        if total >= max_rows:
            break
    cur.close()
    if not taken:
        return 0
    for rowid, n in taken:
        frame = conn.execute(_FRAME, (rowid,)).fetchone()[0]
        conn.execute("SAVEPOINT fold")
        try:
            inserts.insert(conn, plain(_decode(frame)))
        except _BAD_BATCH as e:
            conn.execute("ROLLBACK TO fold")
            conn.execute(_FAILED, (rowid,))
            log.error("a staged usage-ledger batch of %d rows cannot be inserted (%s: %s): "
                      "kept in usage_staged (rowid %d, rows negated)", n, type(e).__name__,
                      e, rowid)
        conn.execute("RELEASE fold")
    now = _ms()
    conn.execute(_FOLDED, (now, taken[-1][0]))
    conn.execute(_FORGET, (now - int(KEYS_KEPT * 1000),))
    return len(taken)


class LedgerStage:
    """The ledger writer's side on a connection of its own, synchronous: a batch staged
    (one statement, committed at once), staged batches folded a chunk at a time (one
    transaction each). Used by the writer process (``ledger_writer``) and the ledger's
    thread (``sqlite_ledger``)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], insert_sql: str) -> None:
        self._connect = connect
        self._conn: sqlite3.Connection | None = None
        self._inserts = RowInserts(insert_sql)
        #: rows staged, as this writer last saw them: its own batches added, the table
        #: read again after each fold (another worker's writer or a reader folds too)
        self.staged = 0
        self._light_run = 0  # batches in a row of fewer than LIGHT_BATCH rows

    def open(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            conn = self._conn = self._connect()
            self.staged = conn.execute(STAGED_SQL).fetchone()[0]
        return conn

    def stage(self, key: str, parts: Sequence[Part]) -> None:
        """Keep one batch, durable when this returns: each of its ``parts`` (``[rows,
        frame]``, ``ledger_frames.Part``: a row count and those rows, msgpack) as a staged
        row of its own, keyed ``key/i``, all in one transaction (one ``COMMIT``)."""
        conn = self.open()
        if conn.in_transaction:  # (a fold abandoned half-way: the thread's task cancelled)
            conn.execute("ROLLBACK")
        now = _ms()
        conn.execute("BEGIN IMMEDIATE")
        try:
            added = 0
            for i, (n, frame) in enumerate(parts):
                if conn.execute(STAGE_SQL, (f"{key}/{i}", n, now, frame)).rowcount:
                    added += n
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.staged += added
        light = sum(n for n, _ in parts) < LIGHT_BATCH
        self._light_run = self._light_run + 1 if light else 0

    @property
    def light(self) -> bool:
        """Whether the batches come as under light traffic (fold after each one)."""
        return self._light_run >= LIGHT_RUN

    def fold(self, max_rows: int) -> int:
        """Fold one chunk (one transaction); returns the rows still staged."""
        conn = self.open()
        conn.execute("BEGIN IMMEDIATE")
        try:
            fold_staged(conn, self._inserts, max_rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.staged = conn.execute(STAGED_SQL).fetchone()[0]
        return self.staged

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

"""The embedded default backend: one SQLite file in WAL mode.

Why the stdlib ``sqlite3`` on a small thread pool, and not ``aiosqlite``: a plan runs as
one synchronous transaction in one thread hop, where aiosqlite pays a hop per statement;
measured 3 to 6 times cheaper per turn (bench/README.md). Each pool thread owns one connection;
WAL lets readers run beside the single writer, write transactions start with
``BEGIN IMMEDIATE`` (so concurrent writers queue on the busy timeout instead of failing on
a lock upgrade), and several worker processes can share the file. The usage ledger is
written on a connection of its own, by a child process (``ledger_process``) or from a
thread (``sqlite_ledger``), a batch staged as one row and folded into ``usage_ledger``
when quiet; a read of the ledger folds what is staged first (``ledger_staging``).

Durability: ``synchronous=FULL`` syncs the WAL on every commit, so a turn acknowledged to
the client survives ``kill -9`` and power loss alike; it costs one fsync per turn, never
per streamed chunk.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from . import plans as p
from .ledger_inserts import RowInserts, connect
from .ledger_parts import BATCH_ROWS
from .ledger_process import ProcessLedger
from .ledger_staging import FOLD_CHUNK, STAGED_SQL, fold_staged
from .schema import SQLITE, UNUSED_BRANCH
from .settings import StoreSettings
from .sqlite_ledger import SqliteLedger
from .statements import Prepared, Returns, prepare
from .store import SessionStore, StoreError
from .usage import (
    GroupKey,
    UsageGroup,
    UsageQuery,
    UsageRow,
    UsageValues,
    group_from_row,
    group_sql,
    insert_sql,
    row_from_db,
    select_sql,
)

R = TypeVar("R")

BUSY_TIMEOUT = 10.0  # seconds a writer waits for another process's transaction
#: The ledger child's nice value. On a worker's one core (bench/run.py pins it) the child at
#: the worker's priority preempted the loop for whole time slices (added p99 3.3-4.4x of no
#: ledger); at 10 the loop wins each wake-up and the child still gets ~10 % of a busy core,
#: several times what a saturated worker's rows need (nice 19 fell behind). bench/README.md,
#: "Session 8". With ``ledger_priority: idle`` (the default) the child runs at ``SCHED_IDLE``
#: instead, and at this nice value only while it catches up (``ledger_process``).
LEDGER_NICE = 10
DEFAULT_POOL = 4



class SqliteStore(SessionStore):
    unavailable = (sqlite3.Error, OSError, StoreError)
    #: One batch a second up to 5,000 requests a second (per worker): a batch costs its
    #: writer one ``COMMIT`` (an fsync) whatever its size, and is staged in parts of 500
    #: rows (``ledger_parts``), so the fold's transactions stay as small.
    ledger_batch_rows = BATCH_ROWS

    def __init__(self, settings: StoreSettings) -> None:
        super().__init__(settings)
        self.path = settings.sqlite_path()
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._ledger: SqliteLedger | ProcessLedger | None = None

    # --- connections ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path, BUSY_TIMEOUT)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    async def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create {self.path.parent}: {e.strerror}") from None
        self._pool = ThreadPoolExecutor(self.settings.pool_size or DEFAULT_POOL,
                                        thread_name_prefix="dragoman-sqlite")
        self._ledger = self._new_ledger()
        loop = asyncio.get_running_loop()
        try:
            leftovers = await loop.run_in_executor(self._pool, self._migrate)
        except sqlite3.Error as e:
            self._shutdown()
            raise StoreError(f"cannot open the session database {self.path}: {e}") from None
        except StoreError:
            self._shutdown()
            raise
        if leftovers:  # batches staged by a previous run: folded when quiet
            self._ledger.fold_leftovers()

    def _new_ledger(self) -> SqliteLedger | ProcessLedger:
        def thread() -> SqliteLedger:
            return SqliteLedger(self._connect, _INSERT_USAGE)
        if self.settings.ledger_writer == "thread":
            return thread()
        # started at the first batch (or for leftovers), after ``_migrate`` made the table
        ledger = ProcessLedger(self.path, BUSY_TIMEOUT, _INSERT_USAGE, thread,
                               nice=LEDGER_NICE, idle=self.settings.ledger_priority == "idle")
        ledger.backlog = self._ledger_backlog
        return ledger

    def _ledger_backlog(self) -> float:
        return self.ledger_backlog() if self.ledger_backlog is not None else 0.0

    def _migrate(self) -> int:
        """Migrate; returns the ledger rows left staged."""
        conn = self._conn()
        if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
            raise StoreError(f"{self.path}: the file system does not support WAL mode")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS dragoman_schema "
                         "(version INTEGER NOT NULL, applied INTEGER NOT NULL)")
            version = conn.execute("SELECT max(version) FROM dragoman_schema").fetchone()[0] or 0
            if version > len(SQLITE):
                raise StoreError(f"{self.path} has schema version {version}, newer than this "
                                 f"dragoman knows ({len(SQLITE)}); upgrade dragoman")
            for v in range(version + 1, len(SQLITE) + 1):
                for stmt in SQLITE[v - 1]:
                    conn.execute(stmt)
                conn.execute("INSERT INTO dragoman_schema VALUES (?, strftime('%s','now'))",
                             (v,))
            leftovers = int(conn.execute(STAGED_SQL).fetchone()[0])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return leftovers

    def _shutdown(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._conns_lock:
            for c in self._conns:
                c.close()
            self._conns.clear()

    def closing(self) -> None:
        if isinstance(self._ledger, ProcessLedger):
            self._ledger.closing()

    async def _close(self) -> None:
        if self._ledger is not None:
            await self._ledger.aclose()  # the writer process's last batch, then its end
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown)

    # --- the usage ledger: its own process or thread, and connection -----------------------

    async def append_usage(self, rows: list[UsageValues]) -> None:
        # Timed like every plan, but not through ``_guarded``: the ledger's caller (the
        # batch writer) sees the driver's own error, e.g. sqlite3.IntegrityError.
        await self._timed("append_usage", self._append_to_ledger(rows))

    async def _append_to_ledger(self, rows: list[UsageValues]) -> None:
        await self.open()
        assert self._ledger is not None
        await self._ledger.append(rows)

    async def usage_rows(self, query: UsageQuery) -> list[UsageRow]:
        await self._fold_staged()
        return await super().usage_rows(query)

    async def usage_groups(self, query: UsageQuery,
                           by: tuple[GroupKey, ...]) -> list[UsageGroup]:
        await self._fold_staged()
        return await super().usage_groups(query, by)

    async def _fold_staged(self) -> None:
        """Fold every staged batch first, a chunk per transaction on the reader's own
        connection (SQLite's write lock takes turns with the writer's), so a read sees
        every record appended before it (``ledger_staging``)."""
        while await self._run(p.fold_staged_usage(FOLD_CHUNK), write=True):
            pass

    # --- plans ------------------------------------------------------------------------------

    async def _execute(self, plan: p.Plan[R], write: bool) -> R:
        assert self._pool is not None
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self._transaction, plan, write)

    def _transaction(self, plan: p.Plan[R], write: bool) -> R:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            result = p.run_sync(plan, lambda op: _op(conn, op))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result


# --- operations -----------------------------------------------------------------------------

def _qmark(i: int) -> str:
    return f"?{i}"


_SQL = prepare(_qmark, "")  # the write transaction already excludes every other writer


def _op(c: sqlite3.Connection, op: p.Op[Any]) -> Any:
    prep = _SQL.get(type(op))
    return _run(c, prep, op) if prep is not None else _OWN[type(op)](c, op)


def _run(c: sqlite3.Connection, prep: Prepared, op: p.Op[Any]) -> Any:
    if prep.first is not None:
        _run(c, prep.first, op)
    st = prep.statement
    cur = c.execute(prep.sql(op), st.args(op))
    returns = st.returns
    if returns is Returns.NOTHING:
        return None
    if returns is Returns.ROW:
        row = cur.fetchone()
        return st.row(*row) if row is not None and st.row is not None else None
    if returns is Returns.ROWS:
        assert st.row is not None
        return [st.row(*r) for r in cur]
    if returns is Returns.COLUMN:
        return [r[0] for r in cur]
    return cur.rowcount == 1 if returns is Returns.CHANGED else cur.rowcount


# What only SQLite writes this way: bulk inserts, deletes that say what they removed.

def _insert_rows(c: sqlite3.Connection, op: p.InsertRows) -> None:
    c.executemany("INSERT INTO messages VALUES (?, ?, ?, ?)",
                  [(op.branch_id, op.start + i, ch, data)
                   for i, (ch, data) in enumerate(op.rows)])


def _delete_response(c: sqlite3.Connection, op: p.DeleteResponse) -> str | None:
    row = c.execute("SELECT branch_id FROM responses WHERE tenant = ? AND id = ?",
                    (op.tenant, op.id)).fetchone()
    if row is None:
        return None
    c.execute("DELETE FROM responses WHERE tenant = ? AND id = ?", (op.tenant, op.id))
    return str(row[0])


def _drop_orphan_branch(c: sqlite3.Connection, op: p.DropOrphanBranch) -> str | None:
    row = c.execute("SELECT parent_id FROM branches WHERE id = ? AND thread_id IS NULL AND "
                    + UNUSED_BRANCH, (op.id,)).fetchone()
    if row is None:
        return None
    c.execute("DELETE FROM branches WHERE id = ?", (op.id,))
    return row[0]


def _put_agent_turn(c: sqlite3.Connection, op: p.PutAgentTurn) -> None:
    c.executemany("INSERT OR REPLACE INTO agent_turns VALUES (?, ?, ?, ?)",
                  [(op.tenant, cid, op.now, op.data) for cid in op.call_ids])


_INSERT_USAGE = insert_sql(_qmark)
_DAY = "strftime('%Y-%m-%d', ts / 1000, 'unixepoch')"


_ROW_INSERTS = RowInserts(_INSERT_USAGE)


def _insert_usage(c: sqlite3.Connection, op: p.InsertUsage) -> None:
    c.executemany(_INSERT_USAGE, op.rows)


def _fold_staged_usage(c: sqlite3.Connection, op: p.FoldStagedUsage) -> int:
    return fold_staged(c, _ROW_INSERTS, op.max_rows)


def _select_usage(c: sqlite3.Connection, op: p.SelectUsage) -> list[UsageRow]:
    sql, args = select_sql(op.query, _qmark)
    return [row_from_db(r) for r in c.execute(sql, args)]


def _group_usage(c: sqlite3.Connection, op: p.GroupUsage) -> list[UsageGroup]:
    sql, args = group_sql(op.query, op.by, _qmark, _DAY)
    return [group_from_row(op.by, r) for r in c.execute(sql, args)]


_OWN: dict[type, Any] = {
    p.InsertRows: _insert_rows, p.DeleteResponse: _delete_response,
    p.DropOrphanBranch: _drop_orphan_branch, p.PutAgentTurn: _put_agent_turn,
    p.InsertUsage: _insert_usage, p.SelectUsage: _select_usage, p.GroupUsage: _group_usage,
    p.FoldStagedUsage: _fold_staged_usage,
}

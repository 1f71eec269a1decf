"""The embedded default backend: one SQLite file in WAL mode.

Why the stdlib ``sqlite3`` on a small thread pool, and not ``aiosqlite``: a plan runs as
one synchronous transaction in one thread hop, where aiosqlite pays a hop per statement;
measured 3 to 6 times cheaper per turn (bench/README.md). Each pool thread owns one connection;
WAL lets readers run beside the single writer, write transactions start with
``BEGIN IMMEDIATE`` (so concurrent writers queue on the busy timeout instead of failing on
a lock upgrade), and several worker processes can share the file.

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
from .schema import HISTORY_CTE, SQLITE
from .settings import StoreSettings
from .store import SessionStore, StoreError
from .usage import (
    UsageGroup,
    UsageRow,
    group_from_row,
    group_sql,
    insert_sql,
    row_from_db,
    select_sql,
)

R = TypeVar("R")

BUSY_TIMEOUT = 10.0  # seconds a writer waits for another process's transaction
DEFAULT_POOL = 4

_ROWS = HISTORY_CTE.format(end="?", branch="?", start="?", col="data")
_CHAINS = HISTORY_CTE.format(end="?", branch="?", start="0", col="chain")
_BRANCH = ("SELECT id, tenant, thread_id, parent_id, parent_len, depth, length, head_chain, "
           "created, updated FROM branches")
_THREAD = "SELECT id, tenant, key, main_branch, created, updated FROM threads"
_RESPONSE = ("SELECT tenant, id, branch_id, input_seq, output_seq, end_seq, end_chain, created, "
             "model, status, request, response FROM responses")


class SqliteStore(SessionStore):
    unavailable = (sqlite3.Error, OSError, StoreError)

    def __init__(self, settings: StoreSettings) -> None:
        super().__init__(settings)
        self.path = settings.sqlite_path()
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()

    # --- connections ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

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
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._pool, self._migrate)
        except sqlite3.Error as e:
            self._shutdown()
            raise StoreError(f"cannot open the session database {self.path}: {e}") from None
        except StoreError:
            self._shutdown()
            raise

    def _migrate(self) -> None:
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
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._conns_lock:
            for c in self._conns:
                c.close()
            self._conns.clear()

    async def _close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown)

    # --- plans ------------------------------------------------------------------------------

    async def _execute(self, plan: p.Plan[R], write: bool) -> R:
        assert self._pool is not None
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self._transaction, plan, write)

    def _transaction(self, plan: p.Plan[R], write: bool) -> R:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            result = p.run_sync(plan, lambda op: _OPS[type(op)](conn, op))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result


# --- operations -----------------------------------------------------------------------------

def _branch(row: Any) -> p.BranchRow | None:
    return p.BranchRow(*row) if row is not None else None


def _fetch_response(c: sqlite3.Connection, op: p.FetchResponse) -> p.ResponseRow | None:
    row = c.execute(_RESPONSE + " WHERE tenant = ? AND id = ? AND created >= ?",
                    (op.tenant, op.id, op.min_created)).fetchone()
    return p.ResponseRow(*row) if row is not None else None


def _fetch_rows(c: sqlite3.Connection, op: p.FetchRows) -> list[bytes]:
    return [r[0] for r in c.execute(_ROWS, (op.end, op.branch_id, op.start))]


def _fetch_chains(c: sqlite3.Connection, op: p.FetchChains) -> list[bytes]:
    return [r[0] for r in c.execute(_CHAINS, (op.end, op.branch_id))]


def _fetch_thread(c: sqlite3.Connection, op: p.FetchThread) -> p.ThreadRow | None:
    row = c.execute(_THREAD + " WHERE tenant = ? AND key = ?", (op.tenant, op.key)).fetchone()
    return p.ThreadRow(*row) if row is not None else None


def _fetch_branch(c: sqlite3.Connection, op: p.FetchBranch) -> p.BranchRow | None:
    return _branch(c.execute(_BRANCH + " WHERE id = ?", (op.id,)).fetchone())


def _lock_thread(c: sqlite3.Connection, op: p.LockThread) -> p.ThreadRow:
    # The write transaction (BEGIN IMMEDIATE) already excludes every other writer.
    c.execute("INSERT OR IGNORE INTO threads (id, tenant, key, created, updated) "
              "VALUES (?, ?, ?, ?, ?)", (op.new_id, op.tenant, op.key, op.now, op.now))
    row = c.execute(_THREAD + " WHERE tenant = ? AND key = ?", (op.tenant, op.key)).fetchone()
    return p.ThreadRow(*row)


def _recent_branches(c: sqlite3.Connection, op: p.RecentBranches) -> list[p.BranchRow]:
    return [p.BranchRow(*r) for r in c.execute(
        _BRANCH + " WHERE thread_id = ? AND updated >= ? ORDER BY updated DESC LIMIT ?",
        (op.thread_id, op.min_updated, op.limit))]


def _advance_branch(c: sqlite3.Connection, op: p.AdvanceBranch) -> bool:
    cur = c.execute("UPDATE branches SET length = ?, head_chain = ?, updated = ? "
                    "WHERE id = ? AND length = ?",
                    (op.new_length, op.head_chain, op.now, op.id, op.old_length))
    return cur.rowcount == 1


def _insert_branch(c: sqlite3.Connection, op: p.InsertBranch) -> None:
    b = op.row
    c.execute("INSERT INTO branches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
              (b.id, b.tenant, b.thread_id, b.parent_id, b.parent_len, b.depth, b.length,
               b.head_chain, b.created, b.updated))


def _insert_rows(c: sqlite3.Connection, op: p.InsertRows) -> None:
    c.executemany("INSERT INTO messages VALUES (?, ?, ?, ?)",
                  [(op.branch_id, op.start + i, ch, data)
                   for i, (ch, data) in enumerate(op.rows)])


def _set_main_branch(c: sqlite3.Connection, op: p.SetMainBranch) -> None:
    c.execute("UPDATE threads SET main_branch = ?, updated = ? WHERE id = ?",
              (op.branch_id, op.now, op.thread_id))


def _insert_response(c: sqlite3.Connection, op: p.InsertResponse) -> None:
    r = op.row
    c.execute("INSERT INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
              (r.tenant, r.id, r.branch_id, r.input_seq, r.output_seq, r.end_seq, r.end_chain,
               r.created, r.model, r.status, r.request, r.response))


def _delete_response(c: sqlite3.Connection, op: p.DeleteResponse) -> str | None:
    row = c.execute("SELECT branch_id FROM responses WHERE tenant = ? AND id = ?",
                    (op.tenant, op.id)).fetchone()
    if row is None:
        return None
    c.execute("DELETE FROM responses WHERE tenant = ? AND id = ?", (op.tenant, op.id))
    return str(row[0])


_UNUSED = ("NOT EXISTS (SELECT 1 FROM responses r WHERE r.branch_id = branches.id) "
           "AND NOT EXISTS (SELECT 1 FROM branches c WHERE c.parent_id = branches.id)")


def _drop_orphan_branch(c: sqlite3.Connection, op: p.DropOrphanBranch) -> str | None:
    row = c.execute("SELECT parent_id FROM branches WHERE id = ? AND thread_id IS NULL AND "
                    + _UNUSED, (op.id,)).fetchone()
    if row is None:
        return None
    c.execute("DELETE FROM branches WHERE id = ?", (op.id,))
    return row[0]


def _take_lease(c: sqlite3.Connection, op: p.TakeLease) -> bool:
    cur = c.execute("UPDATE threads SET lease_token = ?, lease_until = ? WHERE id = ? AND "
                    "(lease_token IS NULL OR lease_until < ? OR lease_token = ?)",
                    (op.token, op.until, op.thread_id, op.now, op.token))
    return cur.rowcount == 1


def _renew_lease(c: sqlite3.Connection, op: p.RenewLease) -> bool:
    cur = c.execute("UPDATE threads SET lease_until = ? WHERE id = ? AND lease_token = ?",
                    (op.until, op.thread_id, op.token))
    return cur.rowcount == 1


def _release_lease(c: sqlite3.Connection, op: p.ReleaseLease) -> None:
    c.execute("UPDATE threads SET lease_token = NULL, lease_until = NULL "
              "WHERE id = ? AND lease_token = ?", (op.thread_id, op.token))


def _purge_responses(c: sqlite3.Connection, op: p.PurgeResponses) -> int:
    return c.execute("DELETE FROM responses WHERE created < ?", (op.before,)).rowcount


def _purge_leaf_branches(c: sqlite3.Connection, op: p.PurgeLeafBranches) -> int:
    return c.execute("DELETE FROM branches WHERE updated < ? AND " + _UNUSED,
                     (op.before,)).rowcount


def _purge_threads(c: sqlite3.Connection, op: p.PurgeThreads) -> int:
    return c.execute("DELETE FROM threads WHERE updated < ? AND NOT EXISTS "
                     "(SELECT 1 FROM branches b WHERE b.thread_id = threads.id)",
                     (op.before,)).rowcount


def _put_agent_turn(c: sqlite3.Connection, op: p.PutAgentTurn) -> None:
    c.executemany("INSERT OR REPLACE INTO agent_turns VALUES (?, ?, ?, ?)",
                  [(op.tenant, cid, op.now, op.data) for cid in op.call_ids])


def _fetch_agent_turn(c: sqlite3.Connection, op: p.FetchAgentTurn) -> bytes | None:
    row = c.execute("SELECT data FROM agent_turns WHERE tenant = ? AND call_id = ? AND "
                    "created >= ?", (op.tenant, op.call_id, op.min_created)).fetchone()
    return row[0] if row is not None else None


def _purge_agent_turns(c: sqlite3.Connection, op: p.PurgeAgentTurns) -> int:
    return c.execute("DELETE FROM agent_turns WHERE created < ?", (op.before,)).rowcount


def _qmark(i: int) -> str:
    return "?"


_INSERT_USAGE = insert_sql(_qmark)
_DAY = "strftime('%Y-%m-%d', ts / 1000, 'unixepoch')"


def _insert_usage(c: sqlite3.Connection, op: p.InsertUsage) -> None:
    c.executemany(_INSERT_USAGE, op.rows)


def _select_usage(c: sqlite3.Connection, op: p.SelectUsage) -> list[UsageRow]:
    sql, args = select_sql(op.query, _qmark)
    return [row_from_db(r) for r in c.execute(sql, args)]


def _group_usage(c: sqlite3.Connection, op: p.GroupUsage) -> list[UsageGroup]:
    sql, args = group_sql(op.query, op.by, _qmark, _DAY)
    return [group_from_row(op.by, r) for r in c.execute(sql, args)]


_OPS: dict[type, Any] = {
    p.FetchResponse: _fetch_response, p.FetchRows: _fetch_rows, p.FetchChains: _fetch_chains,
    p.FetchThread: _fetch_thread, p.FetchBranch: _fetch_branch, p.LockThread: _lock_thread,
    p.RecentBranches: _recent_branches, p.AdvanceBranch: _advance_branch,
    p.InsertBranch: _insert_branch, p.InsertRows: _insert_rows,
    p.SetMainBranch: _set_main_branch, p.InsertResponse: _insert_response,
    p.DeleteResponse: _delete_response, p.DropOrphanBranch: _drop_orphan_branch,
    p.TakeLease: _take_lease, p.RenewLease: _renew_lease, p.ReleaseLease: _release_lease,
    p.PurgeResponses: _purge_responses, p.PurgeLeafBranches: _purge_leaf_branches,
    p.PurgeThreads: _purge_threads, p.PutAgentTurn: _put_agent_turn,
    p.FetchAgentTurn: _fetch_agent_turn, p.PurgeAgentTurns: _purge_agent_turns,
    p.InsertUsage: _insert_usage, p.SelectUsage: _select_usage, p.GroupUsage: _group_usage,
}

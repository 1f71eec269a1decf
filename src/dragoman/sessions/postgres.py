"""The PostgreSQL backend (asyncpg): many workers on many hosts share one database.

A writing plan runs in one READ COMMITTED transaction on one pooled connection (a reading
plan runs its statements without one). Turns on one thread
serialise on the thread row (``SELECT … FOR UPDATE``); a continuation of a stored response
locks that response's branch, and extends it only with a compare-and-set on its length, so
two hosts continuing the same response at once end on two branches, never interleaved.
Migrations run under a transaction-scoped advisory lock, so hosts starting together
migrate once. Each worker process has its own pool of ``pool_size`` connections.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]

from . import plans as p
from .schema import HISTORY_CTE, POSTGRES
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

DEFAULT_POOL = 10
CONNECT_TIMEOUT = 10.0
_MIGRATION_LOCK = 0x647261676F6D616E  # "dragoman"

_ROWS = HISTORY_CTE.format(end="$1::integer", branch="$2", start="$3", col="data")
_CHAINS = HISTORY_CTE.format(end="$1::integer", branch="$2", start="0", col="chain")
_BRANCH = ("SELECT id, tenant, thread_id, parent_id, parent_len, depth, length, head_chain, "
           "created, updated FROM branches")
_THREAD = "SELECT id, tenant, key, main_branch, created, updated FROM threads"
_RESPONSE = ("SELECT tenant, id, branch_id, input_seq, output_seq, end_seq, end_chain, created, "
             "model, status, request, response FROM responses")


def describe_dsn(dsn: str) -> str:
    """``host:port/db`` of a DSN, for messages (never the user's password)."""
    try:
        u = urlsplit(dsn)
        return f"{u.hostname or 'localhost'}:{u.port or 5432}{u.path or ''}"
    except ValueError:
        return "the configured server"


class PostgresStore(SessionStore):
    unavailable = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, StoreError,
                   TimeoutError)

    def __init__(self, settings: StoreSettings) -> None:
        super().__init__(settings)
        if not settings.dsn:
            raise StoreError("the postgres session backend needs `dsn`")
        self._dsn = settings.dsn
        self._pool: asyncpg.Pool | None = None

    async def _open(self) -> None:
        where = describe_dsn(self._dsn)
        try:
            pool = await asyncpg.create_pool(
                self._dsn, min_size=1, max_size=self.settings.pool_size or DEFAULT_POOL,
                timeout=CONNECT_TIMEOUT, command_timeout=60)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            raise StoreError(f"cannot connect to PostgreSQL at {where}: "
                             f"{type(e).__name__}: {_safe(e, self._dsn)}") from None
        try:
            async with pool.acquire() as conn, conn.transaction():
                await self._migrate(conn, where)
        except BaseException as e:
            await pool.close()
            if isinstance(e, asyncpg.PostgresError):
                raise StoreError(f"cannot migrate the session schema at {where}: "
                                 f"{_safe(e, self._dsn)}") from None
            raise
        self._pool = pool

    async def _migrate(self, conn: Any, where: str) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS dragoman_schema "
                           "(version INTEGER NOT NULL, applied BIGINT NOT NULL)")
        version = await conn.fetchval("SELECT max(version) FROM dragoman_schema") or 0
        if version > len(POSTGRES):
            raise StoreError(f"the database at {where} has schema version {version}, newer "
                             f"than this dragoman knows ({len(POSTGRES)}); upgrade dragoman")
        for v in range(version + 1, len(POSTGRES) + 1):
            for stmt in POSTGRES[v - 1]:
                await conn.execute(stmt)
            await conn.execute("INSERT INTO dragoman_schema VALUES "
                               "($1, extract(epoch FROM now())::bigint)", v)

    async def _close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def _execute(self, plan: p.Plan[R], write: bool) -> R:
        assert self._pool is not None
        async with self._pool.acquire() as conn:
            async def execute(op: p.Op[Any]) -> Any:
                return await _OPS[type(op)](conn, op)

            if not write:
                # Reads need no transaction (READ COMMITTED would not make two statements
                # one snapshot anyway): rows are immutable, and a history cut short by a
                # concurrent delete is detected by its length (plans.load_previous).
                return await p.run_async(plan, execute)
            async with conn.transaction():
                return await p.run_async(plan, execute)


def _safe(e: BaseException, dsn: str) -> str:
    msg = str(e)
    password = urlsplit(dsn).password if "://" in dsn else None
    return msg.replace(password, "***") if password else msg


# --- operations -----------------------------------------------------------------------------

def _branch(row: Any) -> p.BranchRow | None:
    return p.BranchRow(*row) if row is not None else None


async def _fetch_response(c: Any, op: p.FetchResponse) -> p.ResponseRow | None:
    row = await c.fetchrow(_RESPONSE + " WHERE tenant = $1 AND id = $2 AND created >= $3",
                           op.tenant, op.id, op.min_created)
    return p.ResponseRow(*row) if row is not None else None


async def _fetch_rows(c: Any, op: p.FetchRows) -> list[bytes]:
    return [r[0] for r in await c.fetch(_ROWS, op.end, op.branch_id, op.start)]


async def _fetch_chains(c: Any, op: p.FetchChains) -> list[bytes]:
    return [r[0] for r in await c.fetch(_CHAINS, op.end, op.branch_id)]


async def _fetch_thread(c: Any, op: p.FetchThread) -> p.ThreadRow | None:
    row = await c.fetchrow(_THREAD + " WHERE tenant = $1 AND key = $2", op.tenant, op.key)
    return p.ThreadRow(*row) if row is not None else None


async def _fetch_branch(c: Any, op: p.FetchBranch) -> p.BranchRow | None:
    return _branch(await c.fetchrow(
        _BRANCH + " WHERE id = $1" + (" FOR UPDATE" if op.lock else ""), op.id))


async def _lock_thread(c: Any, op: p.LockThread) -> p.ThreadRow:
    await c.execute("INSERT INTO threads (id, tenant, key, created, updated) "
                    "VALUES ($1, $2, $3, $4, $4) ON CONFLICT (tenant, key) DO NOTHING",
                    op.new_id, op.tenant, op.key, op.now)
    row = await c.fetchrow(_THREAD + " WHERE tenant = $1 AND key = $2 FOR UPDATE",
                           op.tenant, op.key)
    return p.ThreadRow(*row)


async def _recent_branches(c: Any, op: p.RecentBranches) -> list[p.BranchRow]:
    return [p.BranchRow(*r) for r in await c.fetch(
        _BRANCH + " WHERE thread_id = $1 AND updated >= $2 ORDER BY updated DESC LIMIT $3",
        op.thread_id, op.min_updated, op.limit)]


async def _advance_branch(c: Any, op: p.AdvanceBranch) -> bool:
    status = await c.execute("UPDATE branches SET length = $1, head_chain = $2, updated = $3 "
                             "WHERE id = $4 AND length = $5",
                             op.new_length, op.head_chain, op.now, op.id, op.old_length)
    return bool(status == "UPDATE 1")


async def _insert_branch(c: Any, op: p.InsertBranch) -> None:
    b = op.row
    await c.execute("INSERT INTO branches VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    b.id, b.tenant, b.thread_id, b.parent_id, b.parent_len, b.depth, b.length,
                    b.head_chain, b.created, b.updated)


async def _insert_rows(c: Any, op: p.InsertRows) -> None:
    # One round trip whatever the number of rows.
    await c.execute("INSERT INTO messages (branch_id, seq, chain, data) "
                    "SELECT $1, $2 + i - 1, ch, d FROM unnest($3::bytea[], $4::bytea[]) "
                    "WITH ORDINALITY AS t(ch, d, i)",
                    op.branch_id, op.start, [r[0] for r in op.rows], [r[1] for r in op.rows])


async def _set_main_branch(c: Any, op: p.SetMainBranch) -> None:
    await c.execute("UPDATE threads SET main_branch = $1, updated = $2 WHERE id = $3",
                    op.branch_id, op.now, op.thread_id)


async def _insert_response(c: Any, op: p.InsertResponse) -> None:
    r = op.row
    await c.execute("INSERT INTO responses VALUES "
                    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    r.tenant, r.id, r.branch_id, r.input_seq, r.output_seq, r.end_seq,
                    r.end_chain, r.created, r.model, r.status, r.request, r.response)


async def _delete_response(c: Any, op: p.DeleteResponse) -> str | None:
    return await c.fetchval(
        "DELETE FROM responses WHERE tenant = $1 AND id = $2 RETURNING branch_id",
        op.tenant, op.id)


_UNUSED = ("NOT EXISTS (SELECT 1 FROM responses r WHERE r.branch_id = branches.id) "
           "AND NOT EXISTS (SELECT 1 FROM branches c WHERE c.parent_id = branches.id)")


async def _drop_orphan_branch(c: Any, op: p.DropOrphanBranch) -> str | None:
    row = await c.fetchrow("DELETE FROM branches WHERE id = $1 AND thread_id IS NULL AND "
                           + _UNUSED + " RETURNING parent_id", op.id)
    return row[0] if row is not None else None


async def _take_lease(c: Any, op: p.TakeLease) -> bool:
    status = await c.execute(
        "UPDATE threads SET lease_token = $1, lease_until = $2 WHERE id = $3 AND "
        "(lease_token IS NULL OR lease_until < $4 OR lease_token = $1)",
        op.token, op.until, op.thread_id, op.now)
    return bool(status == "UPDATE 1")


async def _renew_lease(c: Any, op: p.RenewLease) -> bool:
    status = await c.execute("UPDATE threads SET lease_until = $1 WHERE id = $2 AND "
                             "lease_token = $3", op.until, op.thread_id, op.token)
    return bool(status == "UPDATE 1")


async def _release_lease(c: Any, op: p.ReleaseLease) -> None:
    await c.execute("UPDATE threads SET lease_token = NULL, lease_until = NULL "
                    "WHERE id = $1 AND lease_token = $2", op.thread_id, op.token)


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def _purge_responses(c: Any, op: p.PurgeResponses) -> int:
    return _count(await c.execute("DELETE FROM responses WHERE created < $1", op.before))


async def _purge_leaf_branches(c: Any, op: p.PurgeLeafBranches) -> int:
    return _count(await c.execute("DELETE FROM branches WHERE updated < $1 AND " + _UNUSED,
                                  op.before))


async def _purge_threads(c: Any, op: p.PurgeThreads) -> int:
    return _count(await c.execute("DELETE FROM threads WHERE updated < $1 AND NOT EXISTS "
                                  "(SELECT 1 FROM branches b WHERE b.thread_id = threads.id)",
                                  op.before))


async def _put_agent_turn(c: Any, op: p.PutAgentTurn) -> None:
    await c.execute("INSERT INTO agent_turns (tenant, call_id, created, data) "
                    "SELECT $1, cid, $3, $4 FROM unnest($2::text[]) AS t(cid) "
                    "ON CONFLICT (tenant, call_id) DO UPDATE SET created = excluded.created, "
                    "data = excluded.data", op.tenant, op.call_ids, op.now, op.data)


async def _fetch_agent_turn(c: Any, op: p.FetchAgentTurn) -> bytes | None:
    data: bytes | None = await c.fetchval(
        "SELECT data FROM agent_turns WHERE tenant = $1 AND call_id = $2 AND created >= $3",
        op.tenant, op.call_id, op.min_created)
    return data


async def _purge_agent_turns(c: Any, op: p.PurgeAgentTurns) -> int:
    return _count(await c.execute("DELETE FROM agent_turns WHERE created < $1", op.before))


def _dollar(i: int) -> str:
    return f"${i}"


_INSERT_USAGE = insert_sql(_dollar)
_DAY = "to_char(to_timestamp(ts / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


async def _insert_usage(c: Any, op: p.InsertUsage) -> None:
    await c.executemany(_INSERT_USAGE, op.rows)


async def _select_usage(c: Any, op: p.SelectUsage) -> list[UsageRow]:
    sql, args = select_sql(op.query, _dollar)
    return [row_from_db(r) for r in await c.fetch(sql, *args)]


async def _group_usage(c: Any, op: p.GroupUsage) -> list[UsageGroup]:
    sql, args = group_sql(op.query, op.by, _dollar, _DAY)
    return [group_from_row(op.by, r) for r in await c.fetch(sql, *args)]


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

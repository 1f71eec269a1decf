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
from .schema import POSTGRES, UNUSED_BRANCH
from .settings import StoreSettings
from .statements import Prepared, Returns, prepare
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
                return await _op(conn, op)

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

def _dollar(i: int) -> str:
    return f"${i}"


_SQL = prepare(_dollar, " FOR UPDATE")


async def _op(c: Any, op: p.Op[Any]) -> Any:
    prep = _SQL.get(type(op))
    return await (_run(c, prep, op) if prep is not None else _OWN[type(op)](c, op))


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def _run(c: Any, prep: Prepared, op: p.Op[Any]) -> Any:
    if prep.first is not None:
        await _run(c, prep.first, op)
    st = prep.statement
    sql, args, returns = prep.sql(op), st.args(op), st.returns
    if returns is Returns.ROW:
        row = await c.fetchrow(sql, *args)
        return st.row(*row) if row is not None and st.row is not None else None
    if returns is Returns.ROWS:
        assert st.row is not None
        return [st.row(*r) for r in await c.fetch(sql, *args)]
    if returns is Returns.COLUMN:
        return [r[0] for r in await c.fetch(sql, *args)]
    status = await c.execute(sql, *args)
    if returns is Returns.NOTHING:
        return None
    return _count(status) == 1 if returns is Returns.CHANGED else _count(status)


# What only PostgreSQL writes this way: bulk inserts in one round trip, RETURNING deletes.

async def _insert_rows(c: Any, op: p.InsertRows) -> None:
    await c.execute("INSERT INTO messages (branch_id, seq, chain, data) "
                    "SELECT $1, $2 + i - 1, ch, d FROM unnest($3::bytea[], $4::bytea[]) "
                    "WITH ORDINALITY AS t(ch, d, i)",
                    op.branch_id, op.start, [r[0] for r in op.rows], [r[1] for r in op.rows])


async def _delete_response(c: Any, op: p.DeleteResponse) -> str | None:
    return await c.fetchval(
        "DELETE FROM responses WHERE tenant = $1 AND id = $2 RETURNING branch_id",
        op.tenant, op.id)


async def _drop_orphan_branch(c: Any, op: p.DropOrphanBranch) -> str | None:
    row = await c.fetchrow("DELETE FROM branches WHERE id = $1 AND thread_id IS NULL AND "
                           + UNUSED_BRANCH + " RETURNING parent_id", op.id)
    return row[0] if row is not None else None


async def _put_agent_turn(c: Any, op: p.PutAgentTurn) -> None:
    await c.execute("INSERT INTO agent_turns (tenant, call_id, created, data) "
                    "SELECT $1, cid, $3, $4 FROM unnest($2::text[]) AS t(cid) "
                    "ON CONFLICT (tenant, call_id) DO UPDATE SET created = excluded.created, "
                    "data = excluded.data", op.tenant, op.call_ids, op.now, op.data)


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


_OWN: dict[type, Any] = {
    p.InsertRows: _insert_rows, p.DeleteResponse: _delete_response,
    p.DropOrphanBranch: _drop_orphan_branch, p.PutAgentTurn: _put_agent_turn,
    p.InsertUsage: _insert_usage, p.SelectUsage: _select_usage, p.GroupUsage: _group_usage,
}

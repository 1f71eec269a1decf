"""The plans' operations as SQL, written once for both SQL backends.

Each ``Statement`` says what one operation (``plans.Op``) runs: its SQL with ``$1``-style
placeholders, the arguments taken from the operation, and what the result is. The two
executors (``sqlite.py``, ``postgres.py``) differ only in how they run it: SQLite writes
the placeholders ``?1`` and needs no row locks (its write transaction excludes every other
writer), PostgreSQL locks the rows a ``{lock}`` marks (``FOR UPDATE``). The operations
whose mechanism differs — bulk inserts (``executemany`` vs ``unnest``) and deletes that
report what they removed (``RETURNING``) — stay with each backend.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import plans as p
from .schema import HISTORY_CTE, SELECT_BRANCH, SELECT_RESPONSE, SELECT_THREAD, UNUSED_BRANCH


class Returns(enum.Enum):
    NOTHING = "nothing"
    ROW = "row"  # the first row built with ``row``, or None
    ROWS = "rows"  # every row built with ``row``
    COLUMN = "column"  # the first column of every row
    CHANGED = "changed"  # exactly one row was changed
    COUNT = "count"  # how many rows were changed


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    args: Callable[[Any], tuple[Any, ...]]
    returns: Returns = Returns.NOTHING
    row: Callable[..., Any] | None = None
    lock: Callable[[Any], bool] | None = None
    """The rows read are locked (``{lock}`` in ``sql``) when this says so; None: never."""
    first: Statement | None = None
    """Run before this one with the same operation (an insert-if-absent before its read)."""

    def render(self, placeholder: Callable[[int], str], for_update: str,
               locked: bool) -> str:
        return _PARAM.sub(lambda m: placeholder(int(m.group(1))), self.sql).replace(
            "{lock}", for_update if locked else "")


_PARAM = re.compile(r"\$(\d+)")
_HISTORY = HISTORY_CTE.format(end="CAST($1 AS INTEGER)", branch="$2", start="{start}",
                              col="{col}")

STATEMENTS: dict[type, Statement] = {
    p.FetchResponse: Statement(
        SELECT_RESPONSE + " WHERE tenant = $1 AND id = $2 AND created >= $3",
        lambda op: (op.tenant, op.id, op.min_created), Returns.ROW, p.ResponseRow),
    p.FetchRows: Statement(
        _HISTORY.replace("{start}", "$3").replace("{col}", "data"),
        lambda op: (op.end, op.branch_id, op.start), Returns.COLUMN),
    p.FetchChains: Statement(
        _HISTORY.replace("{start}", "0").replace("{col}", "chain"),
        lambda op: (op.end, op.branch_id), Returns.COLUMN),
    p.FetchThread: Statement(
        SELECT_THREAD + " WHERE tenant = $1 AND key = $2",
        lambda op: (op.tenant, op.key), Returns.ROW, p.ThreadRow),
    p.FetchBranch: Statement(
        SELECT_BRANCH + " WHERE id = $1{lock}",
        lambda op: (op.id,), Returns.ROW, p.BranchRow, lock=lambda op: bool(op.lock)),
    p.LockThread: Statement(
        SELECT_THREAD + " WHERE tenant = $1 AND key = $2{lock}",
        lambda op: (op.tenant, op.key), Returns.ROW, p.ThreadRow, lock=lambda op: True,
        first=Statement("INSERT INTO threads (id, tenant, key, created, updated) "
                        "VALUES ($1, $2, $3, $4, $4) ON CONFLICT (tenant, key) DO NOTHING",
                        lambda op: (op.new_id, op.tenant, op.key, op.now))),
    p.RecentBranches: Statement(
        SELECT_BRANCH + " WHERE thread_id = $1 AND updated >= $2 ORDER BY updated DESC "
        "LIMIT $3", lambda op: (op.thread_id, op.min_updated, op.limit), Returns.ROWS,
        p.BranchRow),
    p.AdvanceBranch: Statement(
        "UPDATE branches SET length = $1, head_chain = $2, updated = $3 "
        "WHERE id = $4 AND length = $5",
        lambda op: (op.new_length, op.head_chain, op.now, op.id, op.old_length),
        Returns.CHANGED),
    p.InsertBranch: Statement(
        "INSERT INTO branches VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        lambda op: (op.row.id, op.row.tenant, op.row.thread_id, op.row.parent_id,
                    op.row.parent_len, op.row.depth, op.row.length, op.row.head_chain,
                    op.row.created, op.row.updated)),
    p.SetMainBranch: Statement(
        "UPDATE threads SET main_branch = $1, updated = $2 WHERE id = $3",
        lambda op: (op.branch_id, op.now, op.thread_id)),
    p.InsertResponse: Statement(
        "INSERT INTO responses VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        lambda op: (op.row.tenant, op.row.id, op.row.branch_id, op.row.input_seq,
                    op.row.output_seq, op.row.end_seq, op.row.end_chain, op.row.created,
                    op.row.model, op.row.status, op.row.request, op.row.response)),
    p.TakeLease: Statement(
        "UPDATE threads SET lease_token = $1, lease_until = $2 WHERE id = $3 AND "
        "(lease_token IS NULL OR lease_until < $4 OR lease_token = $1)",
        lambda op: (op.token, op.until, op.thread_id, op.now), Returns.CHANGED),
    p.RenewLease: Statement(
        "UPDATE threads SET lease_until = $1 WHERE id = $2 AND lease_token = $3",
        lambda op: (op.until, op.thread_id, op.token), Returns.CHANGED),
    p.ReleaseLease: Statement(
        "UPDATE threads SET lease_token = NULL, lease_until = NULL "
        "WHERE id = $1 AND lease_token = $2", lambda op: (op.thread_id, op.token)),
    p.PurgeResponses: Statement(
        "DELETE FROM responses WHERE created < $1", lambda op: (op.before,), Returns.COUNT),
    p.PurgeLeafBranches: Statement(
        "DELETE FROM branches WHERE updated < $1 AND " + UNUSED_BRANCH,
        lambda op: (op.before,), Returns.COUNT),
    p.PurgeThreads: Statement(
        "DELETE FROM threads WHERE updated < $1 AND NOT EXISTS "
        "(SELECT 1 FROM branches b WHERE b.thread_id = threads.id)",
        lambda op: (op.before,), Returns.COUNT),
    p.FetchAgentTurn: Statement(
        "SELECT data FROM agent_turns WHERE tenant = $1 AND call_id = $2 AND created >= $3",
        lambda op: (op.tenant, op.call_id, op.min_created), Returns.ROW, lambda data: data),
    p.PurgeAgentTurns: Statement(
        "DELETE FROM agent_turns WHERE created < $1", lambda op: (op.before,), Returns.COUNT),
}


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement rendered for one backend: its SQL without and with row locks."""

    statement: Statement
    plain: str
    locked: str
    first: Prepared | None

    def sql(self, op: Any) -> str:
        lock = self.statement.lock
        return self.locked if lock is not None and lock(op) else self.plain


def prepare(placeholder: Callable[[int], str], for_update: str) -> dict[type, Prepared]:
    """Every statement rendered once for a backend (at import, never per operation)."""

    def one(st: Statement) -> Prepared:
        return Prepared(st, st.render(placeholder, for_update, False),
                        st.render(placeholder, for_update, True),
                        one(st.first) if st.first is not None else None)

    return {op: one(st) for op, st in STATEMENTS.items()}

"""The in-process backend: the same plans applied to dicts. Nothing survives the process
and worker processes do not share it; for tests and the embedded Python API."""

from __future__ import annotations

from collections import deque
from typing import Any, TypeVar

from . import plans as p
from .settings import StoreSettings
from .store import SessionStore
from .usage import UsageGroup, UsageRow, group_rows, matches, row_from_db

R = TypeVar("R")

#: Usage ledger rows the memory backend keeps (the newest).
MEMORY_LEDGER_ROWS = 100_000


class MemoryStore(SessionStore):
    def __init__(self, settings: StoreSettings | None = None) -> None:
        super().__init__(settings or StoreSettings(backend="memory"))
        self._threads: dict[tuple[str, str], p.ThreadRow] = {}
        self._thread_by_id: dict[str, p.ThreadRow] = {}
        self._leases: dict[str, tuple[str, int]] = {}
        self._branches: dict[str, p.BranchRow] = {}
        self._rows: dict[str, list[tuple[bytes, bytes]]] = {}  # row i is seq parent_len + i
        self._responses: dict[tuple[str, str], p.ResponseRow] = {}
        self._users: dict[str, int] = {}  # branch id → responses and forks that read it
        self._agent_turns: dict[tuple[str, str], tuple[int, bytes]] = {}  # → (created, data)
        # The ledger, oldest first; bounded, as nothing here outlives the process anyway.
        self._usage: deque[UsageRow] = deque(maxlen=MEMORY_LEDGER_ROWS)

    async def _open(self) -> None:
        return None

    async def _close(self) -> None:
        return None

    async def _execute(self, plan: p.Plan[R], write: bool) -> R:
        # No await inside: the whole plan runs atomically on the event loop.
        return p.run_sync(plan, self._op)

    def _op(self, op: p.Op[Any]) -> Any:
        return getattr(self, "_" + type(op).__name__)(op)

    # --- reads ------------------------------------------------------------------------------

    def _FetchResponse(self, op: p.FetchResponse) -> p.ResponseRow | None:
        row = self._responses.get((op.tenant, op.id))
        return row if row is not None and row.created >= op.min_created else None

    def _segments(self, branch_id: str, end: int) -> list[tuple[list[tuple[bytes, bytes]],
                                                                 int, int]]:
        """(rows, first seq, upto) for the branch and its ancestors, oldest first."""
        out = []
        b = self._branches.get(branch_id)
        upto = end
        while b is not None:
            out.append((self._rows[b.id], b.parent_len, upto))
            upto = min(upto, b.parent_len)
            b = self._branches.get(b.parent_id) if b.parent_id else None
        out.reverse()
        return out

    def _slice(self, branch_id: str, start: int, end: int, col: int) -> list[bytes]:
        got: list[bytes] = []
        for rows, first, upto in self._segments(branch_id, end):
            lo, hi = max(start, first), upto
            got.extend(r[col] for r in rows[max(0, lo - first):max(0, hi - first)])
        return got

    def _FetchRows(self, op: p.FetchRows) -> list[bytes]:
        return self._slice(op.branch_id, op.start, op.end, 1)

    def _FetchChains(self, op: p.FetchChains) -> list[bytes]:
        return self._slice(op.branch_id, 0, op.end, 0)

    def _FetchThread(self, op: p.FetchThread) -> p.ThreadRow | None:
        return self._threads.get((op.tenant, op.key))

    def _FetchBranch(self, op: p.FetchBranch) -> p.BranchRow | None:
        return self._branches.get(op.id)

    # --- writes -----------------------------------------------------------------------------

    def _LockThread(self, op: p.LockThread) -> p.ThreadRow:
        th = self._threads.get((op.tenant, op.key))
        if th is None:
            th = p.ThreadRow(id=op.new_id, tenant=op.tenant, key=op.key, main_branch=None,
                             created=op.now, updated=op.now)
            self._threads[(op.tenant, op.key)] = th
            self._thread_by_id[th.id] = th
        return th

    def _RecentBranches(self, op: p.RecentBranches) -> list[p.BranchRow]:
        found = [b for b in self._branches.values()
                 if b.thread_id == op.thread_id and b.updated >= op.min_updated]
        found.sort(key=lambda b: b.updated, reverse=True)
        return found[:op.limit]

    def _AdvanceBranch(self, op: p.AdvanceBranch) -> bool:
        b = self._branches.get(op.id)
        if b is None or b.length != op.old_length:
            return False
        b.length, b.head_chain, b.updated = op.new_length, op.head_chain, op.now
        return True

    def _InsertBranch(self, op: p.InsertBranch) -> None:
        self._branches[op.row.id] = op.row
        self._rows[op.row.id] = []
        if op.row.parent_id is not None:
            self._use(op.row.parent_id, 1)

    def _InsertRows(self, op: p.InsertRows) -> None:
        rows = self._rows[op.branch_id]
        assert self._branches[op.branch_id].parent_len + len(rows) == op.start
        rows.extend(op.rows)

    def _SetMainBranch(self, op: p.SetMainBranch) -> None:
        th = self._thread_by_id[op.thread_id]
        th.main_branch, th.updated = op.branch_id, op.now

    def _InsertResponse(self, op: p.InsertResponse) -> None:
        self._responses[(op.row.tenant, op.row.id)] = op.row
        self._use(op.row.branch_id, 1)

    def _DeleteResponse(self, op: p.DeleteResponse) -> str | None:
        row = self._responses.pop((op.tenant, op.id), None)
        if row is None:
            return None
        self._use(row.branch_id, -1)
        return row.branch_id

    def _use(self, branch_id: str, delta: int) -> None:
        n = self._users.get(branch_id, 0) + delta
        if n:
            self._users[branch_id] = n
        else:
            self._users.pop(branch_id, None)

    def _used(self, branch_id: str) -> bool:
        return branch_id in self._users

    def _drop(self, branch_id: str) -> None:
        b = self._branches.pop(branch_id)
        del self._rows[branch_id]
        if b.parent_id is not None:
            self._use(b.parent_id, -1)

    def _DropOrphanBranch(self, op: p.DropOrphanBranch) -> str | None:
        b = self._branches.get(op.id)
        if b is None or b.thread_id is not None or self._used(b.id):
            return None
        self._drop(b.id)
        return b.parent_id

    def _TakeLease(self, op: p.TakeLease) -> bool:
        held = self._leases.get(op.thread_id)
        if held is not None and held[1] >= op.now and held[0] != op.token:
            return False
        self._leases[op.thread_id] = (op.token, op.until)
        return True

    def _RenewLease(self, op: p.RenewLease) -> bool:
        held = self._leases.get(op.thread_id)
        if held is None or held[0] != op.token:
            return False
        self._leases[op.thread_id] = (op.token, op.until)
        return True

    def _ReleaseLease(self, op: p.ReleaseLease) -> None:
        held = self._leases.get(op.thread_id)
        if held is not None and held[0] == op.token:
            del self._leases[op.thread_id]

    def _PurgeResponses(self, op: p.PurgeResponses) -> int:
        old = [k for k, r in self._responses.items() if r.created < op.before]
        for k in old:
            self._use(self._responses.pop(k).branch_id, -1)
        return len(old)

    def _PurgeLeafBranches(self, op: p.PurgeLeafBranches) -> int:
        old = [b.id for b in self._branches.values()
               if b.updated < op.before and not self._used(b.id)]
        for b in old:
            self._drop(b)
        return len(old)

    def _PurgeThreads(self, op: p.PurgeThreads) -> int:
        live = {b.thread_id for b in self._branches.values()}
        old = [k for k, th in self._threads.items() if th.updated < op.before
               and th.id not in live]
        for k in old:
            th = self._threads.pop(k)
            del self._thread_by_id[th.id]
            self._leases.pop(th.id, None)
        return len(old)

    # --- agent turns ------------------------------------------------------------------------

    def _PutAgentTurn(self, op: p.PutAgentTurn) -> None:
        for cid in op.call_ids:
            self._agent_turns[(op.tenant, cid)] = (op.now, op.data)

    def _FetchAgentTurn(self, op: p.FetchAgentTurn) -> bytes | None:
        hit = self._agent_turns.get((op.tenant, op.call_id))
        return hit[1] if hit is not None and hit[0] >= op.min_created else None

    def _PurgeAgentTurns(self, op: p.PurgeAgentTurns) -> int:
        old = [k for k, (created, _) in self._agent_turns.items() if created < op.before]
        for k in old:
            del self._agent_turns[k]
        return len(old)

    # --- usage ledger -----------------------------------------------------------------------

    def _InsertUsage(self, op: p.InsertUsage) -> None:
        self._usage.extend(map(row_from_db, op.rows))  # (read back as rows)

    def _SelectUsage(self, op: p.SelectUsage) -> list[UsageRow]:
        q = op.query
        hits = [r for r in reversed(self._usage) if matches(q, r)]
        hits.sort(key=lambda r: r.ts, reverse=True)  # stable: ties stay newest first
        return hits[:q.limit]

    def _GroupUsage(self, op: p.GroupUsage) -> list[UsageGroup]:
        return group_rows((r for r in self._usage if matches(op.query, r)), op.by)

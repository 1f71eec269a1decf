"""The session store's algorithms, written once for every backend.

A plan is a generator that yields primitive operations (``Op`` subclasses below) and gets
each one's result back; a backend runs the whole plan inside one transaction by
executing those operations. SQLite runs a plan synchronously in one worker-thread hop
(measured 3 to 6 times cheaper than a hop per statement, bench/README.md), PostgreSQL
awaits each operation on one pooled connection, the memory backend applies them to dicts.
So the placement rules (threads, branches, forks) exist once, and a backend is a list of
small statements.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

from ..core import ChatRequest, ChatResponse, Message, new_id
from .history import EMPTY_CHAIN, ThreadView, chain, common_prefix, prefix_chains
from .records import PreviousResponse, PurgeStats, StoredResponse, Turn, TurnResult
from .usage import GroupKey, UsageGroup, UsageQuery, UsageRow, UsageValues

R = TypeVar("R")

#: A fork of a fork of … is read through its ancestors in one recursive query; past this
#: depth a new fork copies its history instead, so reads stay bounded.
MAX_FORK_DEPTH = 16
#: How many of a thread's most recently written branches a turn is matched against.
RECENT_BRANCHES = 32

encode = msgspec.msgpack.Encoder().encode
decode_message = msgspec.msgpack.Decoder(Message).decode
decode_request = msgspec.msgpack.Decoder(ChatRequest).decode
decode_response = msgspec.msgpack.Decoder(ChatResponse).decode


class Op(Generic[R]):
    """A primitive operation whose result has type ``R``."""

    __slots__ = ()


Plan = Generator[Op[Any], Any, R]


def do(op: Op[R]) -> Generator[Op[Any], Any, R]:
    """``x = yield from do(SomeOp(...))``: run one operation, typed."""
    return (yield op)


def run_sync(plan: Plan[R], execute: Any) -> R:
    """Drive ``plan`` with a synchronous ``execute(op) -> result``."""
    try:
        op = next(plan)
        while True:
            op = plan.send(execute(op))
    except StopIteration as stop:
        return stop.value


async def run_async(plan: Plan[R], execute: Any) -> R:
    """Drive ``plan`` with an ``async execute(op) -> result``."""
    try:
        op = next(plan)
        while True:
            op = plan.send(await execute(op))
    except StopIteration as stop:
        return stop.value


# --- rows -----------------------------------------------------------------------------------

@dataclass(slots=True)
class ThreadRow:
    id: str
    tenant: str
    key: str
    main_branch: str | None
    created: int  # ms
    updated: int  # ms


@dataclass(slots=True)
class BranchRow:
    id: str
    tenant: str
    thread_id: str | None  # None: an anonymous Responses chain
    parent_id: str | None
    parent_len: int  # the first parent_len messages are the parent's
    depth: int
    length: int
    head_chain: bytes
    created: int  # ms
    updated: int  # ms


@dataclass(slots=True)
class ResponseRow:
    tenant: str
    id: str
    branch_id: str
    input_seq: int
    output_seq: int
    end_seq: int
    end_chain: bytes
    created: int  # s
    model: str
    status: str
    request: bytes
    response: bytes


# --- operations -----------------------------------------------------------------------------
# Reads.

@dataclass(frozen=True, slots=True)
class FetchResponse(Op["ResponseRow | None"]):
    tenant: str
    id: str
    min_created: int


@dataclass(frozen=True, slots=True)
class FetchRows(Op["list[bytes]"]):
    """Encoded messages ``[start, end)`` of a branch's history, ancestors included."""

    branch_id: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class FetchChains(Op["list[bytes]"]):
    """Chain values of messages ``[0, end)`` of a branch's history."""

    branch_id: str
    end: int


@dataclass(frozen=True, slots=True)
class FetchThread(Op["ThreadRow | None"]):
    tenant: str
    key: str


@dataclass(frozen=True, slots=True)
class FetchBranch(Op["BranchRow | None"]):
    id: str
    lock: bool  # FOR UPDATE where the backend has row locks


# Writes.

@dataclass(frozen=True, slots=True)
class LockThread(Op[ThreadRow]):
    """Get or create the thread ``(tenant, key)`` and lock it for the transaction."""

    tenant: str
    key: str
    new_id: str
    now: int


@dataclass(frozen=True, slots=True)
class RecentBranches(Op["list[BranchRow]"]):
    thread_id: str
    limit: int
    min_updated: int


@dataclass(frozen=True, slots=True)
class AdvanceBranch(Op[bool]):
    """Set a branch's length and head if its length is still ``old_length``."""

    id: str
    old_length: int
    new_length: int
    head_chain: bytes
    now: int


@dataclass(frozen=True, slots=True)
class InsertBranch(Op[None]):
    row: BranchRow


@dataclass(frozen=True, slots=True)
class InsertRows(Op[None]):
    """Message rows ``start, start+1, …`` of a branch: ``(chain, encoded message)``."""

    branch_id: str
    start: int
    rows: list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class SetMainBranch(Op[None]):
    thread_id: str
    branch_id: str
    now: int


@dataclass(frozen=True, slots=True)
class InsertResponse(Op[None]):
    row: ResponseRow


@dataclass(frozen=True, slots=True)
class DeleteResponse(Op["str | None"]):
    """Delete a response; its branch id, or None if there was none."""

    tenant: str
    id: str


@dataclass(frozen=True, slots=True)
class DropOrphanBranch(Op["str | None"]):
    """Delete an anonymous branch no response and no fork refers to any more; its parent
    id if it was deleted (the parent may have become an orphan too), else None."""

    id: str


@dataclass(frozen=True, slots=True)
class TakeLease(Op[bool]):
    thread_id: str
    token: str
    until: int
    now: int


@dataclass(frozen=True, slots=True)
class RenewLease(Op[bool]):
    thread_id: str
    token: str
    until: int


@dataclass(frozen=True, slots=True)
class ReleaseLease(Op[None]):
    thread_id: str
    token: str


@dataclass(frozen=True, slots=True)
class PurgeResponses(Op[int]):
    before: int  # s


@dataclass(frozen=True, slots=True)
class PurgeLeafBranches(Op[int]):
    """Delete branches untouched since ``before`` that no fork and no response uses."""

    before: int  # ms


@dataclass(frozen=True, slots=True)
class PurgeThreads(Op[int]):
    before: int  # ms


# Agent turns: opaque records, one per (tenant, client call id).

@dataclass(frozen=True, slots=True)
class PutAgentTurn(Op[None]):
    """Store ``data`` under each call id (replacing an older record of the same id)."""

    tenant: str
    call_ids: list[str]
    data: bytes
    now: int  # ms


@dataclass(frozen=True, slots=True)
class FetchAgentTurn(Op["bytes | None"]):
    tenant: str
    call_id: str
    min_created: int  # ms


@dataclass(frozen=True, slots=True)
class PurgeAgentTurns(Op[int]):
    before: int  # ms


# The usage ledger (``usage.py``): rows appended in batches, read by filters.

@dataclass(frozen=True, slots=True)
class InsertUsage(Op[None]):
    rows: list[UsageValues]


@dataclass(frozen=True, slots=True)
class SelectUsage(Op["list[UsageRow]"]):
    query: UsageQuery


@dataclass(frozen=True, slots=True)
class GroupUsage(Op["list[UsageGroup]"]):
    query: UsageQuery
    by: tuple[GroupKey, ...]


@dataclass(frozen=True, slots=True)
class FoldStagedUsage(Op[int]):
    """SQLite only: move about ``max_rows`` staged ledger rows into ``usage_ledger``
    (``ledger_staging``); how many staged batches it took."""

    max_rows: int


# --- plans ----------------------------------------------------------------------------------

def load_response(tenant: str, id: str, min_created: int) -> Plan[StoredResponse | None]:
    row = yield from do(FetchResponse(tenant, id, min_created))
    if row is None:
        return None
    return StoredResponse(id=row.id, tenant=row.tenant, created=row.created, model=row.model,
                          request=decode_request(row.request),
                          response=decode_response(row.response), status=row.status)


def load_previous(tenant: str, id: str, min_created: int) -> Plan[PreviousResponse | None]:
    row = yield from do(FetchResponse(tenant, id, min_created))
    if row is None:
        return None
    data = yield from do(FetchRows(row.branch_id, 0, row.end_seq))
    if len(data) != row.end_seq:
        return None  # deleted or purged between the two reads
    return PreviousResponse(id=row.id, messages=[decode_message(d) for d in data],
                            branch_id=row.branch_id, end_seq=row.end_seq,
                            end_chain=row.end_chain)


def load_input(tenant: str, id: str, min_created: int) -> Plan[list[Message] | None]:
    row = yield from do(FetchResponse(tenant, id, min_created))
    if row is None:
        return None
    data = yield from do(FetchRows(row.branch_id, row.input_seq, row.output_seq))
    if len(data) != row.output_seq - row.input_seq:
        return None  # deleted or purged between the two reads
    return [decode_message(d) for d in data]


def delete_response(tenant: str, id: str) -> Plan[bool]:
    branch_id = yield from do(DeleteResponse(tenant, id))
    if branch_id is None:
        return False
    orphan: str | None = branch_id
    while orphan is not None:
        orphan = yield from do(DropOrphanBranch(orphan))
    return True


def thread_view(tenant: str, key: str, min_updated: int) -> Plan[ThreadView]:
    th = yield from do(FetchThread(tenant, key))
    if th is None or th.main_branch is None or th.updated < min_updated:
        return ThreadView([], thread_id=th.id if th else None)
    b = yield from do(FetchBranch(th.main_branch, lock=False))
    if b is None:
        return ThreadView([], thread_id=th.id)
    data = yield from do(FetchRows(b.id, 0, b.length))
    if len(data) != b.length:
        return ThreadView([], thread_id=th.id)  # purged meanwhile
    return ThreadView([decode_message(d) for d in data], b.head_chain, th.id, b.id)


def take_lease(tenant: str, key: str, token: str, now: int, until: int) -> Plan[str | None]:
    th = yield from do(LockThread(tenant, key, new_id("th_"), now))
    taken = yield from do(TakeLease(th.id, token, until, now))
    return th.id if taken else None


def renew_lease(thread_id: str, token: str, until: int) -> Plan[bool]:
    return (yield from do(RenewLease(thread_id, token, until)))


def release_lease(thread_id: str, token: str) -> Plan[None]:
    yield from do(ReleaseLease(thread_id, token))


def put_agent_turn(tenant: str, call_ids: list[str], data: bytes, now: int) -> Plan[None]:
    yield from do(PutAgentTurn(tenant, call_ids, data, now))


def load_agent_turn(tenant: str, call_id: str, min_created: int) -> Plan[bytes | None]:
    return (yield from do(FetchAgentTurn(tenant, call_id, min_created)))


def purge(before_s: int, before_ms: int) -> Plan[PurgeStats]:
    responses = yield from do(PurgeResponses(before_s))
    branches = 0
    while True:  # leaves first: a fork's parent goes once the fork is gone
        n = yield from do(PurgeLeafBranches(before_ms))
        if n == 0:
            break
        branches += n
    threads = yield from do(PurgeThreads(before_ms))
    agent_turns = yield from do(PurgeAgentTurns(before_ms))
    return PurgeStats(responses=responses, branches=branches, threads=threads,
                      agent_turns=agent_turns)


@dataclass(slots=True)
class _Place:
    """Where a turn's new rows go: appended to ``branch`` at ``start``, or (``branch`` is
    None) on a new branch forked from ``parent`` at ``start`` (a root when no parent)."""

    start: int
    base: bytes
    branch: BranchRow | None = None
    parent: BranchRow | None = None


def commit_turn(t: Turn, now: int, min_updated: int) -> Plan[TurnResult]:
    """Record a completed turn (``dragoman.sessions`` docstring: thread semantics)."""
    messages = t.messages
    thread: ThreadRow | None = None
    if t.thread_key is not None:
        thread = yield from do(LockThread(t.tenant, t.thread_key, new_id("th_"), now))
    live = thread is not None and thread.main_branch is not None and thread.updated >= min_updated
    chains: list[bytes] = []
    place: _Place | None = None

    if live:
        assert thread is not None
        # The longest recent branch whose whole history the client sent: extend it.
        chains = prefix_chains(messages)
        best: BranchRow | None = None
        for cand in (yield from do(RecentBranches(thread.id, RECENT_BRANCHES, min_updated))):
            if (cand.length <= len(messages) and chains[cand.length] == cand.head_chain
                    and (best is None or cand.length > best.length)):
                best = cand
        if best is not None:
            place = _Place(best.length, best.head_chain, branch=best)

    if place is None and t.previous is not None:
        # ``messages`` starts with exactly the previous response's history.
        p = t.previous
        prev = yield from do(FetchBranch(p.branch_id, lock=True))
        if prev is not None:
            owner = thread.id if thread is not None else None
            if prev.thread_id == owner and prev.length == p.end_seq:
                place = _Place(p.end_seq, p.end_chain, branch=prev)
            else:
                place = _Place(p.end_seq, p.end_chain, parent=prev)

    if place is None and live:
        # The client edited or compacted its history: fork the main branch where they part.
        assert thread is not None and thread.main_branch is not None
        main = yield from do(FetchBranch(thread.main_branch, lock=False))
        if main is not None:
            stored = yield from do(FetchChains(main.id, main.length))
            k = common_prefix([EMPTY_CHAIN, *stored], chains)
            if k > 0:
                place = _Place(k, chains[k], parent=main)

    if place is None or (place.parent is not None and place.parent.depth >= MAX_FORK_DEPTH):
        place = _Place(0, EMPTY_CHAIN)

    rows: list[tuple[bytes, bytes]] = []
    c = place.base
    for m in (*messages[place.start:], *t.output):
        c = chain(c, m)
        rows.append((c, encode(m)))
    length = place.start + len(rows)

    branch: BranchRow | None = place.branch
    if branch is not None and not (yield from do(
            AdvanceBranch(branch.id, place.start, length, c, now))):
        # Extended by a concurrent turn since we read it: fork at the same point instead.
        place.parent, branch = branch, None
    if branch is None:
        parent = place.parent
        branch = BranchRow(id=new_id("br_"), tenant=t.tenant,
                           thread_id=thread.id if thread is not None else None,
                           parent_id=parent.id if parent else None, parent_len=place.start,
                           depth=parent.depth + 1 if parent else 0, length=length,
                           head_chain=c, created=now, updated=now)
        yield from do(InsertBranch(branch))
    yield from do(InsertRows(branch.id, place.start, rows))
    if thread is not None:
        yield from do(SetMainBranch(thread.id, branch.id, now))
    if t.response is not None:
        r = t.response
        request = msgspec.structs.replace(r.request, messages=[])
        yield from do(InsertResponse(ResponseRow(
            tenant=t.tenant, id=r.id, branch_id=branch.id,
            input_seq=max(0, len(messages) - t.input_count), output_seq=len(messages),
            end_seq=length, end_chain=c, created=r.created, model=r.model, status=r.status,
            request=encode(request), response=encode(r.response))))
    return TurnResult(branch_id=branch.id, length=length, appended=place.branch is not None
                      and branch is place.branch,
                      thread_id=thread.id if thread is not None else None)


def append_usage(rows: list[UsageValues]) -> Plan[None]:
    yield from do(InsertUsage(rows))


def fold_staged_usage(max_rows: int) -> Plan[int]:
    return (yield from do(FoldStagedUsage(max_rows)))


def usage_rows(query: UsageQuery) -> Plan[list[UsageRow]]:
    return (yield from do(SelectUsage(query)))


def usage_groups(query: UsageQuery, by: tuple[GroupKey, ...]) -> Plan[list[UsageGroup]]:
    return (yield from do(GroupUsage(query, by)))

"""Turns an agent hands back to its client half-way.

When the model calls a tool the CLIENT declared, the agent ends its turn with that call (the
client runs it) and the next request carries the result. That request only holds what the
client saw — the agent's own tool calls and results of the turn are not in it. The agent
therefore keeps them in a ``TurnStore``, keyed by the caller's tenant and the
client-visible call ids, and splices them back in when the results come (``restore``), so
the model continues with the whole picture. The tenant comes from the request's context
(``RequestContext.tenant``, set by the server from the authenticated principal): another
tenant presenting the same call id finds nothing.

``MemoryTurnStore`` keeps records in the process (the default for an agent built in
Python). The gateway built from a config gives its agents a store on the session database
(``dragoman.server.agent_turns``), so the follow-up may reach any worker process or host
sharing it; records there expire with the sessions TTL.

A record that is missing (expired, evicted, another process with an in-memory store) is
not an error: the conversation the client sent is valid on its own, the model just sees
less of the turn.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol, runtime_checkable

import msgspec

from ..core import Message, ToolCall, ToolResult


class PendingTurn(msgspec.Struct, kw_only=True):
    """``messages``: what the agent added to the conversation in this turn, ending with the
    assistant message that made the client's calls (alongside any calls of its own);
    ``results``: the agent's results for its own calls in that last message."""

    messages: list[Message]
    results: list[ToolResult] = msgspec.field(default_factory=list)


@runtime_checkable
class TurnStore(Protocol):
    """Where an agent keeps ``PendingTurn`` records, per ``(tenant, call id)``. ``put``
    stores one record under each of the turn's client call ids; ``get`` does not remove it
    (a client that retries the same continuation gets the same splice)."""

    async def put(self, tenant: str, call_ids: list[str], turn: PendingTurn) -> None: ...

    async def get(self, tenant: str, call_id: str) -> PendingTurn | None: ...


class MemoryTurnStore:
    """In-process store, bounded in size and age."""

    def __init__(self, max_items: int = 10_000, ttl: float = 24 * 3600.0) -> None:
        self._items: OrderedDict[tuple[str, str], tuple[float, PendingTurn]] = OrderedDict()
        self._max = max_items
        self._ttl = ttl

    async def put(self, tenant: str, call_ids: list[str], turn: PendingTurn) -> None:
        now = time.monotonic()
        for cid in call_ids:
            key = (tenant, cid)
            self._items[key] = (now, turn)
            self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    async def get(self, tenant: str, call_id: str) -> PendingTurn | None:
        key = (tenant, call_id)
        hit = self._items.get(key)
        if hit is None:
            return None
        if time.monotonic() - hit[0] > self._ttl:
            del self._items[key]
            return None
        return hit[1]


async def restore(messages: list[Message], store: TurnStore, tenant: str) -> list[Message]:
    """``messages`` with the agent's hidden part of the last turn spliced back in, when the
    last assistant message is one the agent ended with client tool calls."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "assistant":
            break
    else:
        return messages
    call_ids = [p.id for p in messages[i].content if isinstance(p, ToolCall)]
    if not call_ids:
        return messages
    turn = await store.get(tenant, call_ids[0])
    if turn is None:
        return messages
    rest = messages[i + 1:]
    results: list[ToolResult] = list(turn.results)
    if rest and rest[0].role == "tool":
        results += [p for p in rest[0].content if isinstance(p, ToolResult)]
        rest = rest[1:]
    tail = [Message(role="tool", content=list(results))] if results else []
    return [*messages[:i], *turn.messages, *tail, *rest]

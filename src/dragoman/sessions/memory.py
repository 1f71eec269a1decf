"""In-memory store of Responses-API state (``store: true``), keyed by tenant and id.

Each record keeps the full neutral history up to and including its output, so continuing
a chain with ``previous_response_id`` is one lookup however long the chain is (history
lists share their message objects, so this costs references, not copies). Durable
backends arrive with the sessions issue behind the same interface.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ..core import ChatRequest, ChatResponse, Message


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    tenant: str
    created: int
    model: str
    request: ChatRequest  # as the client sent it (its own input only)
    response: ChatResponse
    history: list[Message]  # every message of the chain, this response's output included
    status: str = "completed"


class MemoryResponseStore:
    def __init__(self, max_items: int = 10_000) -> None:
        self._items: OrderedDict[tuple[str, str], StoredResponse] = OrderedDict()
        self._max = max_items

    async def put(self, rec: StoredResponse) -> None:
        key = (rec.tenant, rec.id)
        self._items[key] = rec
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    async def get(self, tenant: str, id: str) -> StoredResponse | None:
        return self._items.get((tenant, id))

    async def delete(self, tenant: str, id: str) -> bool:
        return self._items.pop((tenant, id), None) is not None

"""A model name as an ``LlmProvider``: calls made through it get the route's load
balancing, retries, fallbacks and breakers. Agents call their model this way, and so can
Python code holding a ``ModelTable``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..core import (
    NO_CONTEXT,
    Capabilities,
    ChatRequest,
    ChatResponse,
    Finish,
    RequestContext,
    StreamError,
    StreamEvent,
)
from .attempts import dispatch
from .first_answer import aclose_events, open_first
from .table import Deployment, ModelTable, Route


class RoutedProvider:
    """Does not own the deployments' providers (the table's owner closes them)."""

    def __init__(self, table: ModelTable, route: Route) -> None:
        self.name = route.name
        self._table = table
        self._route = route

    def __repr__(self) -> str:
        return f"RoutedProvider({self.name!r})"

    @property
    def holds_history(self) -> bool:
        return any(getattr(d.provider, "holds_history", False) for d in self._route.deployments)

    def capabilities(self) -> Capabilities:
        return self._route.provider.capabilities()

    async def complete(self, req: ChatRequest, ctx: RequestContext = NO_CONTEXT) -> ChatResponse:
        async def start(d: Deployment) -> ChatResponse:
            return await d.provider.complete(req, ctx)

        started = await dispatch(self._table, self._route, req, start)
        started.ticket.end("ok")
        return started.value

    async def stream(self, req: ChatRequest,
                     ctx: RequestContext = NO_CONTEXT) -> AsyncIterator[StreamEvent]:
        async def start(d: Deployment) -> tuple[AsyncIterator[StreamEvent], StreamEvent]:
            return await open_first(d.provider, req, d.provider.capabilities(), ctx)

        started = await dispatch(self._table, self._route, req, start)
        events, ev = started.value
        outcome = "client_closed"  # until the stream says otherwise
        try:
            while True:
                if isinstance(ev, Finish):
                    outcome = "ok"
                elif isinstance(ev, StreamError):
                    outcome = ev.error.kind.value
                yield ev
                if outcome != "client_closed":
                    return
                try:
                    ev = await events.__anext__()
                except StopAsyncIteration:
                    return
        finally:
            started.ticket.end(outcome)
            await aclose_events(events)

    async def count_tokens(self, req: ChatRequest) -> int | None:
        return await self._route.provider.count_tokens(req)

    async def aclose(self) -> None:
        return None

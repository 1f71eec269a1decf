"""Providers written before ``stream``/``complete`` took a ``RequestContext``.

The protocol is ``stream(req, ctx=NO_CONTEXT)``; a provider a user wrote against the older
one-argument form (``stream(self, req)``) keeps working: ``with_context`` — applied where
dragoman takes a provider from outside (a ``Deployment``, an agent's model, an
orchestrator's inner call) — looks at the two signatures once and, only when one of them
takes no context, wraps the provider in a proxy that drops it. Built-in providers take
the context, so they are returned as they are and pay nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..core import NO_CONTEXT, Capabilities, ChatRequest, ChatResponse, RequestContext, StreamEvent
from .base import LlmProvider

_P = inspect.Parameter
_POSITIONAL = (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)

#: Per provider class: (stream takes a context, complete takes a context).
_SEEN: dict[type, tuple[bool, bool]] = {}


def takes_context(method: Callable[..., Any], *, default: bool = True) -> bool:
    """Whether a callable (a bound ``stream``/``complete``, a user's function) accepts a
    second positional argument; ``default`` when it has no signature to read (C code)."""
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return default
    return any(p.kind is _P.VAR_POSITIONAL for p in params) or \
        sum(p.kind in _POSITIONAL for p in params) >= 2


def with_context(provider: LlmProvider) -> LlmProvider:
    """``provider`` itself, or — for a provider of the one-argument protocol — a proxy that
    calls it without the context."""
    if isinstance(provider, ContextFree):
        return provider
    kind = type(provider)
    seen = _SEEN.get(kind)
    if seen is None:
        seen = _SEEN[kind] = (takes_context(provider.stream), takes_context(provider.complete))
    if seen == (True, True):
        return provider
    return ContextFree(provider, *seen)


class ContextFree:
    """A one-argument provider behind the current protocol; everything but ``stream`` and
    ``complete`` is the wrapped provider's own (``inner``)."""

    def __init__(self, inner: LlmProvider, stream_ctx: bool, complete_ctx: bool) -> None:
        self.inner = inner
        self.name = inner.name
        self._stream_ctx = stream_ctx
        self._complete_ctx = complete_ctx

    def __repr__(self) -> str:
        return repr(self.inner)

    def __getattr__(self, name: str) -> Any:  # model, holds_history…
        return getattr(self.inner, name)

    def capabilities(self) -> Capabilities:
        return self.inner.capabilities()

    def stream(self, req: ChatRequest,
               ctx: RequestContext = NO_CONTEXT) -> AsyncIterator[StreamEvent]:
        return self.inner.stream(req, ctx) if self._stream_ctx else self.inner.stream(req)

    async def complete(self, req: ChatRequest, ctx: RequestContext = NO_CONTEXT) -> ChatResponse:
        if self._complete_ctx:
            return await self.inner.complete(req, ctx)
        return await self.inner.complete(req)

    async def count_tokens(self, req: ChatRequest) -> int | None:
        return await self.inner.count_tokens(req)

    async def aclose(self) -> None:
        await self.inner.aclose()

"""Caller-owned callables (token and credentials providers) that may be sync or async.

A sync callable runs on the event loop, so it must be quick (return a cached token); one
that does I/O to refresh should be async.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")

MaybeAsync = Callable[..., T | Awaitable[T]]


async def call(fn: MaybeAsync[T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, awaited when it returns an awaitable."""
    got = fn(*args, **kwargs)
    if inspect.isawaitable(got):
        return cast(T, await got)
    return got


def accepts_keyword(fn: Callable[..., Any], name: str) -> bool:
    """Whether ``fn`` can be called with the keyword argument ``name`` (checked once, when
    a provider is built, so callers may hand over zero-argument callables too)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any((p.name == name and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
               or p.kind is p.VAR_KEYWORD for p in params)

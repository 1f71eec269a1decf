"""A small bounded TTL cache with single-flight loading, for resolver answers.

Keys are token digests, never tokens. The bound keeps a flood of distinct bogus tokens
from growing memory; single flight keeps a burst of requests with one new token from
becoming a burst of calls to the identity provider.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import AuthError, Invalid, PolicyDenied

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A cached negative answer. A fresh exception is raised from it each time (raising
    one object across requests would chain their tracebacks)."""

    denied: bool
    message: str
    scope: str | None = None
    code: str | None = None

    def error(self) -> AuthError:
        if self.denied:
            return PolicyDenied(self.message, scope=self.scope, code=self.code)
        return Invalid(self.message)


class TtlCache(Generic[V]):
    def __init__(self, max_entries: int = 10_000) -> None:
        self._data: OrderedDict[bytes, tuple[float, V]] = OrderedDict()
        self._max = max_entries
        self._inflight: dict[bytes, asyncio.Future[V]] = {}

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: bytes) -> V | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        deadline, value = hit
        if time.monotonic() >= deadline:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    def put(self, key: bytes, value: V, ttl: float) -> None:
        if ttl <= 0:
            self._data.pop(key, None)
            return
        self._data[key] = (time.monotonic() + ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()

    async def get_or_load(self, key: bytes, load: Callable[[], Awaitable[tuple[V, float]]]
                          ) -> V:
        """The cached value, or ``load()``'s ``(value, ttl)``: one load per key at a time,
        its result or exception shared by every concurrent caller. The load runs as its
        own task, so the first caller leaving does not cancel it for the others."""
        hit = self.get(key)
        if hit is not None:
            return hit
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key, load))
            task.add_done_callback(_consume)
            self._inflight[key] = task
        return await asyncio.shield(task)

    async def _load(self, key: bytes, load: Callable[[], Awaitable[tuple[V, float]]]) -> V:
        try:
            value, ttl = await load()
            self.put(key, value, ttl)
            return value
        finally:
            self._inflight.pop(key, None)


def _consume(task: asyncio.Future[Any]) -> None:
    # Every waiter may have left: retrieve the exception so asyncio does not log it.
    if not task.cancelled():
        task.exception()

"""Tasks an orchestrator runs in parallel (tool calls, workers): what they report to it
(``Inbox``), and ending the ones still running (``cancel_unfinished``)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    """What parallel tasks report to the one generator that started them, in arrival
    order: ``put`` never waits, ``get`` waits for the next item. (An ``asyncio.Queue``
    does the same with bounds, task counting and any number of readers: about three
    times the work per item, and a Conductor worker reports several per call.)"""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: T) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def ready(self) -> T | None:
        """The next item if one is there (no coroutine to await: most items are)."""
        return self._items.popleft() if self._items else None

    async def get(self) -> T:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()


async def cancel_unfinished(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel every task of ``tasks`` still running and wait until each has ended, so that
    none outlives the step that started it (a client that left, a failed sibling)."""
    unfinished = [t for t in tasks if not t.done()]
    for t in unfinished:
        t.cancel()
    if unfinished:
        await asyncio.wait(unfinished)

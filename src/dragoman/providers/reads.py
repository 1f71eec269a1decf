"""A provider stream that still knows which events came in the same upstream read.

One network read of an LLM stream often carries many SSE frames (a fast upstream, or
one that buffers). Decoding and parsing a read gives its events in one go; handing them
out one ``__anext__`` at a time, and writing each as its own ASGI ``send``, cost more than
translating them (bench/README.md, "Translated streams at the relay's speed"). So the
provider yields one list per read, and this wrapper serves both kinds of consumer:

* one event at a time (``async for``, ``anext``): agents, the router's wrapper, tests;
* one read at a time (``next_read``, ``rest``): the server's stream pump renders a whole
  read and sends it as one body chunk, with no writer task and no coroutine per event.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from .upstream_call import ReadBatches

T = TypeVar("T")


class ReadStream(Generic[T]):
    """Items from ``reads`` (non-empty lists, one per upstream read): a provider's events,
    or the chunks a pass-through relays. Closing it closes ``reads``, and with it the
    upstream connection."""

    __slots__ = ("_batch", "_next", "_reads")

    def __init__(self, reads: ReadBatches[T]) -> None:
        self._reads = reads
        self._batch: list[T] = []
        self._next = 0  # index in _batch of the next item to hand out

    def __aiter__(self) -> ReadStream[T]:
        return self

    async def __anext__(self) -> T:
        batch, i = self._batch, self._next
        if i >= len(batch):
            batch = self._batch = await self._reads.__anext__()
            i = 0
        self._next = i + 1
        return batch[i]

    async def next_read(self) -> list[T]:
        """The events of the current read not handed out yet, or else all of the next
        read's (waiting for it); raises ``StopAsyncIteration`` at the end."""
        batch, i = self._batch, self._next
        self._batch, self._next = [], 0
        if i < len(batch):
            return batch[i:] if i else batch
        return await self._reads.__anext__()

    def rest(self) -> list[T]:
        """The items of the current read not handed out yet (none: ``[]``), without
        waiting for another read."""
        batch, i = self._batch, self._next
        if i >= len(batch):
            return []
        self._batch, self._next = [], 0
        return batch[i:]

    async def aclose(self) -> None:
        self._reads.close()

"""One upstream call, read whole or as a stream: the connection rule written once.

Whole (``read_whole``): read the body, hand the connection back, raise the upstream's
error on a status of 400 or more.

Stream (``ReadBatches``): a status of 400 or more is raised before the first item (the
client still gets a status, its SDK can retry); after that every chunk of the body goes
to a ``StreamReader`` (frames → neutral events, or bytes → bytes for pass-through), and a
failure ends the stream in band, as the reader words it. The connection goes back to the
pool only when the reader says the answer reached its end; otherwise (the client left, the
upstream broke off) it is closed, which is what tells the upstream to stop generating.

Every HTTP provider calls its upstream through these two, whatever it reads the body into.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from ..core import DragomanError, Finish, StreamError, StreamEvent
from ..dialects.contract import StreamParser
from ..net import SseDecoder, UpstreamResponse
from ..net.retry import retry_after_seconds
from .frames import FrameDecoder

T = TypeVar("T")

ErrorFrom = Callable[[UpstreamResponse, bytes], DragomanError]
"""An upstream HTTP failure (its response and whole body) → the core error to raise."""

Opening = Callable[[], Awaitable[UpstreamResponse]]
"""Sends the request; called when the stream is first iterated, not before."""


def with_retry_after(err: DragomanError, resp: UpstreamResponse) -> DragomanError:
    """``err`` (a dialect's reading of an error body) with the retry delay from the
    response's headers when the body named none (body parsers only see the body)."""
    if err.retry_after is None:
        err.retry_after = retry_after_seconds(resp.headers)
    return err


async def read_whole(resp: UpstreamResponse, error_from: ErrorFrom) -> bytes:
    """The whole body of ``resp``, its connection released; ``error_from``'s error for a
    status of 400 or more."""
    try:
        raw = resp.whole()
        if raw is None:
            raw = await resp.read()
    finally:
        resp.release()
    if resp.status >= 400:
        raise error_from(resp, raw)
    return raw


class StreamReader(Protocol[T]):
    """What one streamed answer's body becomes. Each method appends its items to ``out``
    (so that items read before a failure in the same chunk are still delivered)."""

    @property
    def finished(self) -> bool:
        """The answer reached its end: the connection may be kept for reuse."""
        ...

    def feed(self, chunk: bytes, out: list[T]) -> None:
        """A chunk of the body, split anywhere."""

    def end(self, out: list[T]) -> None:
        """The body ended (an answer cut short says so here, by raising)."""

    def fail(self, err: DragomanError, out: list[T]) -> None:
        """The stream broke (transport, or a bad frame): the items that end it in band."""


class ReadBatches(Generic[T]):
    """The items ``reader`` makes of the streamed answer ``opening`` sends for, one
    non-empty list per upstream read (``reads.ReadStream`` serves them one at a time or a
    read at a time). Raises a ``DragomanError`` if the upstream fails before answering;
    later failures are items.

    An async iterator written out, not an async generator: the event loop registers every
    async generator when first iterated (a weak set), and one a consumer leaves suspended
    (the server stops at the answer's terminal event, a read before the body's end) is
    finalized by a task the loop is woken for; this one is a plain object, released or
    closed as soon as its answer ends (bench/README.md, "Translated streams without async
    generators"). Whoever stops iterating before the end calls ``close`` (or ``aclose``)."""

    __slots__ = ("_error_from", "_opening", "_over", "_reader", "_resp")

    def __init__(self, opening: Opening, error_from: ErrorFrom,
                 reader: StreamReader[T]) -> None:
        self._opening = opening
        self._error_from = error_from
        self._reader = reader
        self._resp: UpstreamResponse | None = None
        self._over = False  # the connection was handed back: nothing more to read

    def __aiter__(self) -> ReadBatches[T]:
        return self

    async def __anext__(self) -> list[T]:
        resp = self._resp
        if resp is None:
            if self._over:
                raise StopAsyncIteration
            self._over = True  # (until opened: a failure to open ends the iteration)
            resp = self._resp = await self._opening()
            self._over = False
            if resp.status >= 400:
                try:
                    raise self._error_from(resp, await resp.read())
                finally:
                    self.close()
        reader = self._reader
        out: list[T] = []
        try:
            while True:
                chunk = await resp.next_chunk()
                if chunk is None:
                    reader.end(out)
                    break
                reader.feed(chunk, out)
                if resp.ended:
                    # the body's last read: its end is read with it and the connection
                    # handed back now, not at another call that would only learn it
                    reader.end(out)
                    break
                if out:
                    return out
        except DragomanError as e:
            # (a lazy decoder raises after the good frames of its read: they go first)
            reader.fail(e, out)
        except BaseException:
            self.close()  # cancelled while waiting (the client left), or a bug
            raise
        self.close()  # the body ended (or broke): these are its last items
        if out:
            return out
        raise StopAsyncIteration

    def close(self) -> None:
        """Finished (or stopped at the terminal item, the upstream's last bytes still on
        the way): the connection is kept for reuse once those are read. Abandoned
        mid-stream: closed, so the upstream stops."""
        resp = self._resp
        self._resp = None
        self._over = True
        if resp is not None:
            if self._reader.finished:
                resp.release()
            else:
                resp.close()

    async def aclose(self) -> None:
        self.close()

    def __del__(self) -> None:
        # Dropped mid-stream without ``close`` (a consumer that gave up on it): what an
        # async generator's finalizer would have done.
        if self._resp is not None:
            self.close()


class EventReader:
    """The translating reader: the provider's frame decoder (SSE, NDJSON, AWS event
    stream) feeding its dialect's stream parser.

    An SSE stream whose parser reads a read's data-only frames at once (``feed_data``:
    OpenAI Chat's) gets them that way, as long as the reads are of that shape: one split
    and one call per read, not a decode and a call per frame (bench/README.md, "A read's
    frames at once")."""

    __slots__ = ("_data", "_decoder", "_parser", "finished")

    def __init__(self, decoder: FrameDecoder, parser: StreamParser) -> None:
        self._decoder = decoder
        self._parser = parser
        self.finished = False
        self._data: tuple[Callable[[bytes], list[bytes] | None],
                          Callable[[list[bytes]], list[StreamEvent]]] | None = None
        feed_data = getattr(parser, "feed_data", None)
        if feed_data is not None and isinstance(decoder, SseDecoder):
            self._data = (decoder.data_frames, feed_data)

    def feed(self, chunk: bytes, out: list[StreamEvent]) -> None:
        data_only = self._data
        if data_only is not None:
            datas = data_only[0](chunk)
            if datas is not None:
                events = data_only[1](datas) if datas else None
                if events:
                    out += events
                    self.finished = self.finished or Finish in map(type, events)
                return
        parser = self._parser
        for name, data in self._decoder.feed(chunk):
            events = parser.feed(name, data)
            if events:
                out += events
                if not self.finished and Finish in map(type, events):  # (a C loop)
                    self.finished = True

    def end(self, out: list[StreamEvent]) -> None:
        parser = self._parser
        for name, data in self._decoder.close():
            out += parser.feed(name, data)
        out += parser.close()
        self.finished = True

    def fail(self, err: DragomanError, out: list[StreamEvent]) -> None:
        out.append(StreamError(error=err))

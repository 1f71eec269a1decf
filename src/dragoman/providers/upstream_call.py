"""One upstream call, read whole or as a stream: the connection rule written once.

Whole (``read_whole``): read the body, hand the connection back, raise the upstream's
error on a status of 400 or more.

Stream (``read_batches``): a status of 400 or more is raised before the first item (the
client still gets a status, its SDK can retry); after that every chunk of the body goes
to a ``StreamReader`` (frames → neutral events, or bytes → bytes for pass-through), and a
failure ends the stream in band, as the reader words it. The connection goes back to the
pool only when the reader says the answer reached its end; otherwise (the client left, the
upstream broke off) it is closed, which is what tells the upstream to stop generating.

Every HTTP provider calls its upstream through these two, whatever it reads the body into.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Protocol, TypeVar

from ..core import DragomanError, Finish, StreamError, StreamEvent
from ..dialects.contract import StreamParser
from ..net import UpstreamResponse
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


async def read_batches(opening: Opening, error_from: ErrorFrom,
                       reader: StreamReader[T]) -> AsyncGenerator[list[T], None]:
    """The items ``reader`` makes of the streamed answer ``opening`` sends for, one
    non-empty list per upstream read (``reads.ReadStream`` serves them one at a time or a
    read at a time). Raises a ``DragomanError`` if the upstream fails before answering;
    later failures are items."""
    resp = await opening()
    out: list[T] = []
    try:
        if resp.status >= 400:
            raise error_from(resp, await resp.read())
        try:
            async for chunk in resp.iter_chunks():
                reader.feed(chunk, out)
                if out:
                    yield out
                    out = []
            reader.end(out)
        except DragomanError as e:
            # (a lazy decoder raises after the good frames of its read: they go first)
            reader.fail(e, out)
        if out:
            yield out
    finally:
        # Finished (or closed by a consumer that stopped at the terminal item, the
        # upstream's last bytes still on the way): kept for reuse once those are read.
        # Abandoned mid-stream: closed, so the upstream stops.
        if reader.finished:
            resp.release()
        else:
            resp.close()


class EventReader:
    """The translating reader: the provider's frame decoder (SSE, NDJSON, AWS event
    stream) feeding its dialect's stream parser."""

    __slots__ = ("_decoder", "_parser", "finished")

    def __init__(self, decoder: FrameDecoder, parser: StreamParser) -> None:
        self._decoder = decoder
        self._parser = parser
        self.finished = False

    def feed(self, chunk: bytes, out: list[StreamEvent]) -> None:
        parser = self._parser
        for name, data in self._decoder.feed(chunk):
            events = parser.feed(name, data)
            if events:
                out += events
                if not self.finished:
                    for ev in events:
                        if type(ev) is Finish:
                            self.finished = True

    def end(self, out: list[StreamEvent]) -> None:
        parser = self._parser
        for name, data in self._decoder.close():
            out += parser.feed(name, data)
        out += parser.close()
        self.finished = True

    def fail(self, err: DragomanError, out: list[StreamEvent]) -> None:
        out.append(StreamError(error=err))

"""One keep-alive connection and the exchange on it: the httptools callbacks, read and
write back-pressure, deadlines (checked by the pool's watchdog), and draining an answer
released before its end."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from typing import Protocol

import httptools

from .wire import H1Error, H1Timeout, Inflater, StaleConnection, TooBig, split_head

#: Buffered body bytes past which the socket stops being read.
HIGH_WATER = 256 * 1024
#: Inflated body bytes one connection may buffer unread (a compressed answer's limit).
MAX_INFLATED = 32 * 1024 * 1024
#: A response released before its end (a stream whose consumer stopped at the terminal
#: event, with the upstream's last bytes still on the way) keeps its connection if the
#: rest, at most ``DRAIN_BYTES``, arrives within ``DRAIN_SECONDS``; it is read and dropped.
DRAIN_SECONDS = 1.0
DRAIN_BYTES = 64 * 1024
#: Largest response head accepted (status line and headers).
MAX_HEAD = 256 * 1024
#: Bodies larger than this go out in a second write instead of being copied into the head.
_JOIN_LIMIT = 64 * 1024


class Owner(Protocol):
    """What a connection needs of the pool that owns it (``pool.Pool``): its loop, its
    deadline watchdog, and taking the connection back."""

    loop: asyncio.AbstractEventLoop
    now: Callable[[], float]
    """The loop's clock (``loop.time``'s values)."""

    def release(self, conn: Connection) -> None: ...

    def watch(self, conn: Connection) -> None: ...

    def unwatch(self, conn: Connection) -> None: ...

    def lost(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """One keep-alive connection and the exchange currently on it."""

    __slots__ = ("_buffered", "_chunks", "_drain_until", "_drained", "_draining", "_error",
                 "_got_bytes", "_head", "_head_at", "_head_buf", "_inflate", "_interim", "_loop",
                 "_now", "_parser", "_pool", "_waiter", "_write_ready", "active", "closed",
                 "complete", "first_byte", "head", "headers_done", "idle", "idle_since",
                 "keep_alive", "last_read", "reading_paused", "reused", "started", "status",
                 "total", "transport")

    def __init__(self, pool: Owner) -> None:
        self._pool = pool
        self._loop = pool.loop
        self._now = pool.now
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        # the exchange
        self.active = False
        self.reused = False
        self._head: asyncio.Future[None] | None = None
        self.status = 0
        self._head_buf: list[bytes] = []
        self._head_at = 0
        self.head = b""
        self._interim = False
        self.headers_done = False
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self.complete = False
        self._error: H1Error | None = None
        self._got_bytes = False
        self.reading_paused = False
        self._write_ready: asyncio.Future[None] | None = None
        self._inflate: Inflater | None = None
        self.keep_alive = True
        self._draining = False
        self._drained = 0
        self._drain_until = 0.0
        # deadlines, checked by the pool's watchdog
        self.started = 0.0
        self.last_read = 0.0
        self.first_byte: float | None = None
        self.idle: float | None = None
        self.total: float | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.active or self.complete:
            # Bytes nobody asked for (an idle connection, or past the end of the answer):
            # the framing is lost, so is the connection.
            self._close()
            return
        self._got_bytes = True
        if not self.headers_done:
            # The head is kept as bytes and split into headers only if someone asks.
            self._head_buf.append(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(H1Error("upstream switched protocols"))
            return
        except httptools.HttpParserError:
            if self.complete:
                # Junk after a complete answer (``on_message_begin``): the answer stands,
                # the connection does not.
                self._close()
            else:
                self._fail(self._error or H1Error("upstream sent malformed HTTP"))
                return
        # Checked once parsed: a read that completes a small head may carry up to a read's
        # worth of body too, and only an unfinished head's bytes count against the limit.
        if not self.headers_done and sum(map(len, self._head_buf)) - self._head_at > MAX_HEAD:
            self._fail(H1Error("upstream sent an oversized response head"))
            return
        if not self.complete:
            # (the idle timeout counts from here; a read that completes the answer, as
            # a whole answer's only read does, has no silence left to time)
            self.last_read = self._now()
        if self._draining:
            self._drained_some()
            return
        if self._buffered > HIGH_WATER and not self.reading_paused and not self.complete:
            self.reading_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]
        w = self._waiter
        if w is not None and (self._chunks or self.complete) and not w.done():
            w.set_result(None)

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.active and not self.complete:
            if self.headers_done and self._reads_until_close():
                self._message_done()  # the close is the end of this body
            elif not self._got_bytes and self.reused:
                self._fail(StaleConnection("upstream closed the connection"))
            else:
                self._fail(H1Error("upstream closed the connection" if exc is None
                                   else f"upstream connection failed: {type(exc).__name__}"))
        if self._draining:
            self._stop_draining()
        d = self._write_ready
        if d is not None and not d.done():
            d.set_result(None)
        self._pool.lost(self)

    def pause_writing(self) -> None:
        if self._write_ready is None:
            self._write_ready = self._loop.create_future()

    def resume_writing(self) -> None:
        d, self._write_ready = self._write_ready, None
        if d is not None and not d.done():
            d.set_result(None)

    # --- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            # Another answer in the same read as the end of this one: bytes nobody asked
            # for, as in ``data_received``. Raising stops the parser before they can touch
            # this exchange's status, head or body; the connection is closed.
            raise H1Error("upstream sent bytes past the end of the answer")

    def on_headers_complete(self) -> None:
        buf = self._head_buf
        raw = buf[0] if len(buf) == 1 else b"".join(buf)
        at = self._head_at
        end = raw.find(b"\r\n\r\n", at)
        head = raw[at:end] if end >= 0 else raw[at:]
        if len(head) > MAX_HEAD:  # (one that ended in the read that crossed the limit)
            self._error = H1Error("upstream sent an oversized response head")
            raise self._error
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            # 100 Continue, 103 Early Hints: the answer follows; skip this head.
            # Only what follows it is kept: a flood of interim heads costs no memory.
            self._interim = True
            self._head_buf = [raw[end + 4:]] if end >= 0 else []
            self._head_at = 0
            return
        self._head_buf = []
        self._head_at = 0
        self.head = head
        self.status = status
        self.keep_alive = self._parser.should_keep_alive()
        self.headers_done = True
        low = head.lower()
        at = low.find(b"\ncontent-encoding:")
        if at >= 0:
            line_end = low.find(b"\r", at + 1)
            enc = low[at + 18:line_end if line_end >= 0 else None].strip()
            if enc in (b"gzip", b"x-gzip"):
                self._inflate = Inflater(16 + zlib.MAX_WBITS)
            elif enc == b"deflate":
                self._inflate = Inflater(None)
        h = self._head
        if h is not None and not h.done():
            h.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self._inflate is not None:
            try:
                body = self._inflate.decompress(body, MAX_INFLATED - self._buffered)
            except zlib.error:
                self._error = H1Error("upstream sent a corrupt compressed body")
                raise self._error from None
            except TooBig:
                self._error = H1Error("upstream sent a compressed body that inflates past "
                                      f"{MAX_INFLATED >> 20} MiB unread")
                raise self._error from None
            if not body:
                return
        self._chunks.append(body)
        self._buffered += len(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self._message_done()

    # --- the exchange -------------------------------------------------------------------

    def start(self, data: bytes, body: bytes | None, reused: bool, first_byte: float | None,
              idle: float | None, total: float | None) -> asyncio.Future[None]:
        """Send one request; the returned future resolves when the answer's head is in."""
        self.active = True
        self.reused = reused
        self._got_bytes = self.headers_done = self.complete = self._interim = False
        self._head_buf = []
        self._head_at = 0
        self._chunks = []
        self._buffered = 0
        self._error = None
        self._inflate = None
        self.keep_alive = True
        head = self._head = self._loop.create_future()
        self.started = self.last_read = self._now()
        self.first_byte, self.idle, self.total = first_byte, idle, total
        self._pool.watch(self)
        t = self.transport
        assert t is not None
        if body is None:
            t.write(data)
        elif len(body) <= _JOIN_LIMIT:
            t.write(data + body)
        else:
            t.writelines((data, body))
        return head

    def write_blocked(self) -> asyncio.Future[None] | None:
        """A future to await while the request is still being written (back-pressure),
        or None."""
        return self._write_ready

    def overdue(self, now: float) -> str | None:
        """Which deadline has passed, if one has (the pool's watchdog asks)."""
        if self._draining:
            return "the rest of a released answer did not come" \
                if now >= self._drain_until else None
        if self.total is not None and now >= self.started + self.total:
            return "the exchange ran past its total time limit"
        if not self.headers_done:
            if self.first_byte is not None and now >= self.started + self.first_byte:
                return "no answer within the first-byte timeout"
        elif (self.idle is not None and not self.reading_paused
              and now >= self.last_read + self.idle):
            # (a paused socket is the consumer's doing, not the upstream's silence)
            return "upstream went silent past the idle timeout"
        return None

    def time_out(self, what: str) -> None:
        if self.active and (self._draining or not self.complete):
            self._fail(H1Timeout(what))

    def _message_done(self) -> None:
        self.complete = True
        if self._inflate is not None:
            tail = self._inflate.flush()
            if tail:
                self._chunks.append(tail)
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _fail(self, err: H1Error) -> None:
        self._error = err
        for f in (self._head, self._waiter):
            if f is not None and not f.done():
                f.set_exception(err)
        if self._draining:
            self._stop_draining()
        self._close()

    def _reads_until_close(self) -> bool:
        if self.status in (204, 304):
            return False
        for name, value in split_head(self.head):
            n = name.lower()
            if n == "content-length" or (n == "transfer-encoding" and "chunked" in value.lower()):
                return False
        return True

    def _close(self) -> None:
        self.keep_alive = False
        t = self.transport
        if t is not None and t.get_write_buffer_size():
            # A request still being written: close() would wait for the upstream to read
            # the rest (forever if it stopped reading, with the exchange waiting on the
            # write and the pool slot held). Drop it.
            t.abort()
        elif t is not None and not t.is_closing():
            t.close()

    # --- what the response reads --------------------------------------------------------

    def take(self) -> bytes | None:
        """The body bytes buffered so far (None when there are none)."""
        chunks = self._chunks
        if not chunks:
            return None
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self._buffered = 0
        if self.reading_paused and not self.closed:
            self.reading_paused = False
            self.last_read = self._now()
            self.transport.resume_reading()  # type: ignore[union-attr]
        return data

    async def wait(self) -> None:
        """Until more body, the end, or a failure."""
        if self._error is not None:
            raise self._error
        w = self._waiter = self._loop.create_future()
        try:
            await w
        finally:
            self._waiter = None

    def end_without_body(self) -> None:
        """The answer to a HEAD request: its framing headers describe a body that is not
        sent, so the exchange ends here (and the connection with it)."""
        self.keep_alive = False
        self._message_done()

    def finish(self, reuse: bool) -> None:
        """The response is done with: back to the pool when it can carry another
        exchange (with ``reuse``, after reading the rest of an unfinished answer within
        the ``DRAIN_*`` bounds), else closed."""
        if not self.active or self._draining:
            return
        if (reuse and not self.complete and self.headers_done and self.keep_alive
                and not self.closed and self._write_ready is None and self._error is None):
            self._start_draining()
            return
        self.active = False
        self._pool.unwatch(self)
        self._settle_head()
        if (reuse and self.complete and self.keep_alive and not self.closed
                and self._write_ready is None and self._error is None):
            self._pool.release(self)
        else:
            self._close()

    def _start_draining(self) -> None:
        self._draining = True
        self._settle_head()
        self._drained = self._buffered
        self._chunks = []
        self._buffered = 0
        if self._drained > DRAIN_BYTES:
            self._fail(H1Error("too much of the answer left unread to keep the connection"))
            return
        self._drain_until = self._now() + DRAIN_SECONDS
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]

    def _drained_some(self) -> None:
        """After a read while draining: drop what came, hand the connection back once
        the answer is complete."""
        self._drained += self._buffered
        self._chunks = []
        self._buffered = 0
        if self.complete:
            self._stop_draining()
            if self.keep_alive and not self.closed:
                self._pool.release(self)
            else:
                self._close()
        elif self._drained > DRAIN_BYTES:
            self._fail(H1Error("too much of the answer left unread to keep the connection"))

    def _stop_draining(self) -> None:
        self._draining = False
        self.active = False
        self._pool.unwatch(self)

    def _settle_head(self) -> None:
        h = self._head
        if h is not None:
            self._head = None
            if not h.done():
                h.cancel()
            elif not h.cancelled():
                h.exception()  # retrieved: a failure nobody awaited is not logged

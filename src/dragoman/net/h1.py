"""A small HTTP/1.1 client: keep-alive connections to one origin, parsed by httptools.

Why not aiohttp's client for the upstream hop: measured on the bench machine, one
sequential request through ``aiohttp.ClientSession`` costs ~140 µs of CPU; the same
exchange on an ``asyncio.Protocol`` with httptools' parser costs ~36 µs, and this module
~45 µs (bench/README.md, "Own upstream HTTP client"). A gateway makes one such request per
client request, so that was most of what it added. aiohttp's client does much that an
upstream hop never needs (cookies, redirects, proxies, tracing, multipart payloads); what
it does need is here:

* one origin per pool (scheme, host, port or a Unix socket), TLS with a caller-supplied
  context, a connection limit with a FIFO of waiters, idle connections reused newest first
  and closed after ``KEEPALIVE`` seconds; host names resolved once per ``DNS_TTL`` and
  their addresses raced Happy-Eyeballs style (``aiohappyeyeballs``, as aiohttp does);
* request heads built once with CR/LF/NUL refused (no header injection), bodies sent with
  ``Content-Length`` and write back-pressure;
* responses framed by httptools (Content-Length, chunked, or read-until-close), interim 1xx
  answers skipped, gzip/deflate bodies inflated, headers as a case-insensitive multidict
  built only when asked for;
* read back-pressure: past ``HIGH_WATER`` buffered bytes the socket stops being read until
  the consumer catches up, so a slow client never makes the gateway buffer a whole stream;
* timeouts (first byte, idle between body reads, total) checked by one watchdog timer
  per pool, not a timer per exchange;
* a response released before its end is drained (``DRAIN_*``) and its connection reused:
  a stream's consumer stops at the terminal event, before the upstream's last bytes;
* a reused connection that the server closed before answering is retried once on a new
  one for idempotent methods only (RFC 9112 §9.3.1), as aiohttp does.

Failures surface as ``H1Error`` (transport) or ``H1Timeout``; ``net.http`` turns them into
the core error kinds with messages that say which phase failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import zlib
from collections import deque
from collections.abc import Mapping
from typing import Any

import aiohappyeyeballs
import httptools
from multidict import CIMultiDict, CIMultiDictProxy

#: Seconds an idle keep-alive connection is kept (aiohttp's default, below the usual
#: server-side idle limits of 60-120 s, so a reused connection is rarely a stale one).
KEEPALIVE = 15.0
#: Buffered body bytes past which the socket stops being read.
HIGH_WATER = 256 * 1024
#: Inflated body bytes one connection may buffer unread (a compressed answer's limit).
MAX_INFLATED = 32 * 1024 * 1024
#: Seconds resolved addresses of an origin are reused (aiohttp's ``ttl_dns_cache``).
DNS_TTL = 300.0
#: Happy Eyeballs (RFC 8305): the next address is tried after this many seconds.
HAPPY_EYEBALLS_DELAY = 0.25
#: A response released before its end (a stream whose consumer stopped at the terminal
#: event, with the upstream's last bytes still on the way) keeps its connection if the
#: rest, at most ``DRAIN_BYTES``, arrives within ``DRAIN_SECONDS``; it is read and dropped.
DRAIN_SECONDS = 1.0
DRAIN_BYTES = 64 * 1024
#: Largest response head accepted (status line and headers).
MAX_HEAD = 256 * 1024
#: Bodies larger than this go out in a second write instead of being copied into the head.
_JOIN_LIMIT = 64 * 1024

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class H1Error(Exception):
    """The exchange failed on the wire; the message says how (never a URL or header)."""


class H1Timeout(H1Error):
    """A timeout of the exchange ran out."""


class StaleConnection(H1Error):
    """A reused connection closed before a byte of the answer: safe to retry when the
    method is idempotent."""


class Origin:
    """Where a pool connects: ``scheme://host:port`` or a Unix socket path."""

    __slots__ = ("host", "host_header", "key", "port", "tls", "unix")

    def __init__(self, scheme: str, host: str, port: int | None, unix: str | None = None) -> None:
        self.tls = scheme == "https"
        self.host = host
        default = 443 if self.tls else 80
        self.port = port or default
        self.unix = unix
        bracketed = f"[{host}]" if ":" in host else host
        self.host_header = bracketed if self.port == default else f"{bracketed}:{self.port}"
        self.key = (scheme, host, self.port, unix)


_default_tls: ssl.SSLContext | None = None


def default_tls() -> ssl.SSLContext:
    """The system's trust store, certificate and host name verified, HTTP/1.1 by ALPN."""
    global _default_tls
    if _default_tls is None:
        ctx = ssl.create_default_context()
        ctx.set_alpn_protocols(["http/1.1"])
        _default_tls = ctx
    return _default_tls


def request_head(method: str, target: str, host: str, headers: Mapping[str, str] | None,
                 body_len: int | None) -> bytes:
    """The request line and headers. ``Host`` and ``Content-Length`` are added unless the
    caller set them; a CR, LF or NUL anywhere in a name or value is refused."""
    parts = [method, " ", target, " HTTP/1.1\r\n"]
    has_host = has_length = False
    lines = 1
    if headers:
        for k, v in headers.items():
            n = len(k)
            if n == 4 and k.lower() == "host":
                has_host = True
            elif n == 14 and k.lower() == "content-length":
                has_length = True
            parts += (k, ": ", v, "\r\n")
            lines += 1
    if not has_host:
        parts += ("Host: ", host, "\r\n")
        lines += 1
    if body_len is not None and not has_length:
        parts += ("Content-Length: ", str(body_len), "\r\n")
        lines += 1
    parts.append("\r\n")
    if " " in target:
        raise ValueError("the request target contains a space (not percent-encoded)")
    text = "".join(parts)
    # Every line ends with exactly one CR LF of ours: any other is injected.
    if text.count("\n") != lines + 1 or text.count("\r") != lines + 1 or "\0" in text:
        raise ValueError("a request header name or value contains CR, LF or NUL")
    return text.encode()


class Connection(asyncio.Protocol):
    """One keep-alive connection and the exchange currently on it."""

    __slots__ = ("_buffered", "_chunks", "_drain", "_drain_until", "_drained", "_draining",
                 "_error", "_got_bytes", "_head", "_head_at", "_head_buf", "_inflate", "_interim",
                 "_loop", "_parser", "_pool", "_waiter", "active", "closed", "complete",
                 "first_byte", "head", "headers_done", "idle", "idle_since", "keep_alive",
                 "last_read", "reading_paused", "reused", "started", "status", "total", "transport")

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._loop = pool.loop
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
        self._drain: asyncio.Future[None] | None = None
        self._inflate: Any = None
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
        self.last_read = self._loop.time()
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
        d = self._drain
        if d is not None and not d.done():
            d.set_result(None)
        self._pool.lost(self)

    def pause_writing(self) -> None:
        if self._drain is None:
            self._drain = self._loop.create_future()

    def resume_writing(self) -> None:
        d, self._drain = self._drain, None
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
                self._inflate = _Inflater(16 + zlib.MAX_WBITS)
            elif enc == b"deflate":
                self._inflate = _Inflater(None)
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
            except _TooBig:
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
        self.started = self.last_read = self._loop.time()
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

    def draining(self) -> asyncio.Future[None] | None:
        """A future to await while the request is still being written (back-pressure)."""
        return self._drain

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
            self.last_read = self._loop.time()
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
                and not self.closed and self._drain is None and self._error is None):
            self._start_draining()
            return
        self.active = False
        self._pool.unwatch(self)
        self._settle_head()
        if (reuse and self.complete and self.keep_alive and not self.closed
                and self._drain is None and self._error is None):
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
        self._drain_until = self._loop.time() + DRAIN_SECONDS
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


def split_head(head: bytes) -> list[tuple[str, str]]:
    """The header fields of a response head (status line first, CR LF line ends)."""
    out = []
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            out.append((name.strip().decode("latin-1"),
                        value.strip().decode("utf-8", "surrogateescape")))
    return out


class _TooBig(Exception):
    pass


class _Inflater:
    """gzip or deflate, inflated at most ``room`` bytes at a time: read back-pressure
    bounds the compressed bytes buffered, this bounds what they inflate to (a small
    compressed read can otherwise inflate to gigabytes)."""

    __slots__ = ("_d",)

    def __init__(self, wbits: int | None) -> None:
        """``wbits`` None: ``deflate``, zlib-wrapped by the RFC and raw in practice, told
        apart by its first byte."""
        self._d: Any = None if wbits is None else zlib.decompressobj(wbits)

    def decompress(self, data: bytes, room: int) -> bytes:
        d = self._d
        if d is None:
            if not data:
                return b""
            raw = (data[0] & 0x0F) != 8
            d = self._d = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        out = d.decompress(data, max(room, 1))
        if d.unconsumed_tail:
            raise _TooBig
        return bytes(out)

    def flush(self) -> bytes:
        return bytes(self._d.flush()) if self._d is not None else b""


class Pool:
    """Connections to one origin: at most ``limit`` open (0: no limit), idle ones reused
    newest first, callers past the limit served in arrival order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: Origin, *, limit: int,
                 tls: ssl.SSLContext | None, connect_timeout: float | None,
                 tick: float = 1.0) -> None:
        """``tick``: how often the watchdog checks the deadlines of exchanges in flight;
        a timeout fires up to one tick late."""
        self.loop = loop
        self._tick = tick
        self._watched: set[Connection] = set()
        self._watchdog: asyncio.TimerHandle | None = None
        self.origin = origin
        self._limit = limit
        self._tls = tls
        self._connect_timeout = connect_timeout
        self._idle: list[Connection] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()
        self._sweep: asyncio.TimerHandle | None = None
        self._addrs: list[Any] | None = None
        self._addrs_until = 0.0
        self._resolving: asyncio.Task[list[Any]] | None = None
        self.closed = False

    @property
    def open(self) -> int:
        return self._open

    async def acquire(self) -> tuple[Connection, bool]:
        """A connection and whether it carried an exchange before."""
        idle = self._idle
        if idle:
            now = self.loop.time()
            while idle:
                c = idle.pop()
                if not c.closed and now - c.idle_since < KEEPALIVE:
                    return c, True
                c._close()
        if self.closed:
            raise H1Error("the client is closed")
        if self._limit and self._open >= self._limit:
            # Wait for a connection handed over by ``release`` or for a slot that
            # ``_wake`` reserved for us (None).
            fut: asyncio.Future[Connection | None] = self.loop.create_future()
            self._waiters.append(fut)
            try:
                async with asyncio.timeout(self._connect_timeout):
                    handed = await fut
            except BaseException as e:
                if fut.done() and not fut.cancelled():
                    got = fut.result()
                    if got is not None:
                        self.release(got)
                    else:
                        self._open -= 1
                        self._wake()
                if isinstance(e, TimeoutError):
                    raise H1Timeout("no upstream connection came free within the connect "
                                    "timeout") from None
                raise
            if handed is not None:
                return handed, True
        else:
            self._open += 1
        try:
            return await self._connect(), False
        except BaseException:
            self._open -= 1
            self._wake()
            raise

    async def _connect(self) -> Connection:
        o = self.origin
        sock: socket.socket | None = None
        try:
            async with asyncio.timeout(self._connect_timeout):
                if o.unix:
                    _, conn = await self.loop.create_unix_connection(
                        lambda: Connection(self), o.unix)
                    return conn
                infos = await self._addresses()
                sock = await aiohappyeyeballs.start_connection(
                    infos, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY, interleave=1,
                    loop=self.loop)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if o.tls:
                    _, conn = await self.loop.create_connection(
                        lambda: Connection(self), sock=sock,
                        ssl=self._tls or default_tls(), server_hostname=o.host)
                else:
                    _, conn = await self.loop.create_connection(
                        lambda: Connection(self), sock=sock)
                return conn
        except BaseException as e:
            if sock is not None:
                sock.close()
            self._addrs = None  # (maybe stale: resolve again next time)
            if isinstance(e, TimeoutError):
                raise H1Timeout("connecting to the upstream timed out") from None
            if isinstance(e, ssl.SSLCertVerificationError):
                raise H1Error("upstream TLS certificate rejected") from None
            if isinstance(e, (OSError, ssl.SSLError)):
                raise H1Error(f"cannot connect: {type(e).__name__}") from None
            raise

    async def _addresses(self) -> list[Any]:
        """The origin's addresses, resolved once per ``DNS_TTL`` (concurrent connects
        share one lookup)."""
        if self._addrs is not None and self.loop.time() < self._addrs_until:
            return self._addrs
        task = self._resolving
        if task is None:
            task = self._resolving = self.loop.create_task(self._resolve())
            task.add_done_callback(_retrieve)
        return await asyncio.shield(task)

    async def _resolve(self) -> list[Any]:
        o = self.origin
        try:
            infos = await self.loop.getaddrinfo(o.host, o.port, type=socket.SOCK_STREAM)
        finally:
            self._resolving = None
        if not infos:
            raise OSError(f"no address for {o.host}")
        self._addrs = infos
        self._addrs_until = self.loop.time() + DNS_TTL
        return infos

    def release(self, conn: Connection) -> None:
        if self.closed or conn.closed:
            conn._close()
            return
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(conn)
                return
        conn.idle_since = self.loop.time()
        self._idle.append(conn)
        if self._sweep is None:
            self._sweep = self.loop.call_later(KEEPALIVE, self._sweep_idle)

    # One timer per pool, not one per exchange: arming and cancelling a timer per
    # request cost ~7 µs under uvloop (bench/README.md).

    def watch(self, conn: Connection) -> None:
        self._watched.add(conn)
        if self._watchdog is None:
            self._watchdog = self.loop.call_later(self._tick, self._check_deadlines)

    def unwatch(self, conn: Connection) -> None:
        self._watched.discard(conn)

    def _check_deadlines(self) -> None:
        self._watchdog = None
        if not self._watched:
            return
        now = self.loop.time()
        for c in list(self._watched):
            what = c.overdue(now)
            if what is not None:
                self._watched.discard(c)
                c.time_out(what)
        if self._watched:
            self._watchdog = self.loop.call_later(self._tick, self._check_deadlines)

    def lost(self, conn: Connection) -> None:
        self._open -= 1
        with contextlib.suppress(ValueError):
            self._idle.remove(conn)
        self._wake()

    def _wake(self) -> None:
        """A connection slot came free: it is reserved for the first waiter, which opens
        a new connection on it."""
        if self._limit and self._open >= self._limit:
            return
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                self._open += 1
                w.set_result(None)
                return

    def _sweep_idle(self) -> None:
        self._sweep = None
        now = self.loop.time()
        keep = []
        for c in self._idle:
            if now - c.idle_since >= KEEPALIVE:
                c._close()
            else:
                keep.append(c)
        self._idle = keep
        if keep and not self.closed:
            self._sweep = self.loop.call_later(KEEPALIVE, self._sweep_idle)

    def close(self) -> None:
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for c in self._idle:
            c._close()
        self._idle = []
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_exception(H1Error("the client is closed"))


def _retrieve(task: asyncio.Future[Any]) -> None:
    # A lookup whose waiters were all cancelled: its failure is not worth a log line.
    if not task.cancelled():
        task.exception()


def headers_of(head: bytes) -> CIMultiDictProxy[str]:
    """The response head's fields as a case-insensitive multidict."""
    return CIMultiDictProxy(CIMultiDict(split_head(head)))

"""One pooled HTTP client per upstream, with the timeouts a streaming gateway needs and
every transport failure classified into a core error kind.

The wire work is ``net.h1`` (keep-alive connections parsed by httptools): measured here,
aiohttp's client spent ~140 µs of CPU per upstream request where ``h1`` spends ~36 µs
(bench/README.md). httpx was ruled out earlier: its pool degrades badly at 64 concurrent
requests (bench/reference-measurements.md).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

from multidict import CIMultiDictProxy
from yarl import URL

from ..core import InvalidRequest, TransportError, UpstreamTimeout, spans
from ..core.spans import Span
from .h1 import (
    IDEMPOTENT,
    Connection,
    H1Error,
    H1Timeout,
    Headers,
    Origin,
    Pool,
    StaleConnection,
    headers_of,
    request_head,
)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """``connect``: TCP+TLS set-up (and waiting for a free pooled connection);
    ``first_byte``: from sending the request until the response headers arrive; ``idle``:
    longest silence between two body reads of a response; ``total``: the whole exchange,
    body or stream included (None: no limit)."""

    connect: float = 10.0
    first_byte: float = 600.0
    idle: float = 300.0
    total: float | None = None


class UpstreamResponse:
    """An open upstream response: status, headers, and the body as bytes or chunks."""

    __slots__ = ("_conn", "_headers", "ended", "span", "status")

    def __init__(self, conn: Connection, span: Span | None = None) -> None:
        self._conn = conn
        self.status = conn.status
        self._headers: CIMultiDictProxy[str] | None = None
        #: the upstream call's span when tracing is on: ends with the body
        self.span = span
        #: ``next_chunk`` handed out the body's last bytes: the next one is None. A reader
        #: ends its stream with that read instead of asking again (bench/README.md,
        #: session 10: an instant answer arrives whole, in its first read)
        self.ended = False

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        """Case-insensitive; built on first use (the fast path never looks)."""
        h = self._headers
        if h is None:
            h = self._headers = headers_of(self._conn.head)
        return h

    def whole(self) -> bytes | None:
        """The whole body if all of it is in already (a small answer arrives with its
        head), else None: ``read`` without a coroutine."""
        c = self._conn
        if not c.complete:
            return None
        return c.take() or b""

    async def read(self) -> bytes:
        c = self._conn
        parts: list[bytes] = []
        try:
            while True:
                data = c.take()
                if data is not None:
                    parts.append(data)
                if c.complete:
                    break
                await c.wait()
        except H1Timeout:
            raise UpstreamTimeout("upstream went silent while sending the body") from None
        except H1Error as e:
            raise TransportError(f"upstream connection failed: {e}") from None
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives: each chunk is what came in since the last one."""
        next_chunk = self.next_chunk
        while (chunk := await next_chunk()) is not None:
            yield chunk

    async def next_chunk(self) -> bytes | None:
        """``iter_chunks`` one call at a time: the next chunk, None at the body's end. A
        plain coroutine, for readers with a loop of their own: an async generator is
        registered with the event loop when first iterated, and one left suspended (a
        consumer that stopped at the answer's last event) is finalized by a task the loop
        is woken for (bench/README.md, "Translated streams without async generators")."""
        c = self._conn
        try:
            while True:
                data = c.take()
                if data is not None:
                    if c.complete:
                        self.ended = True
                    return data
                if c.complete:
                    return None
                await c.wait()
        except H1Timeout:
            raise UpstreamTimeout("upstream stream went idle or ran past its total time "
                                  "limit") from None
        except H1Error as e:
            raise TransportError(f"upstream stream broke: {e}") from None

    def release(self) -> None:
        """Body fully read: hand the connection back to the pool (closed if it is not
        reusable, e.g. the body was not read to its end)."""
        self._conn.finish(True)
        if self.span is not None:
            self.span.end()

    def close(self) -> None:
        """Abandon the response: the connection is closed, which stops the upstream."""
        self._conn.finish(False)
        if self.span is not None:
            self.span.end("client_closed" if self.status < 400 else None)


#: Connections one upstream pool may hold. LLM streams are long; a pool smaller than the
#: number of concurrent streams makes the rest queue before their first byte.
DEFAULT_POOL = 1024

#: Resolved request URLs kept per client (paths repeat: one per model and mode).
_TARGETS_KEPT = 256


class HttpClient:
    """Keep-alive connection pools for one upstream base URL (and any absolute URL it is
    asked for: one pool per origin)."""

    def __init__(self, base_url: str, *, timeouts: Timeouts | None = None,
                 limit: int = DEFAULT_POOL, unix_socket: str | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        """``ssl_context`` replaces the default TLS settings (a private CA, a client
        certificate for mTLS: see ``net.tls``). ``unix_socket``: every request goes to
        that socket, whatever the URL's host."""
        self.base_url = base_url.rstrip("/")
        self.timeouts = timeouts or Timeouts()
        self._limit = limit
        self._unix_socket = unix_socket
        self._ssl = ssl_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pools: dict[tuple[object, ...], Pool] = {}
        self._targets: dict[tuple[str, bool], tuple[Origin, str]] = {}
        t = self.timeouts
        limits = [x for x in (t.first_byte, t.idle, t.total) if x is not None]
        # Deadlines are checked a few times per shortest timeout, at most once a second.
        self._tick = min(1.0, max(0.01, min(limits) / 8)) if limits else 1.0

    def _resolve(self, url: str, encoded: bool) -> tuple[Origin, str]:
        """(origin, request target) of a URL, percent-encoded as aiohttp/yarl would
        unless ``encoded``."""
        key = (url, encoded)
        hit = self._targets.get(key)
        if hit is not None:
            return hit
        try:
            u = URL(url, encoded=encoded)
        except ValueError:
            raise TransportError("the upstream URL is not valid") from None
        if u.scheme not in ("http", "https") or not u.raw_host:
            raise TransportError("the upstream URL is not an http(s) URL")
        origin = Origin(u.scheme, u.raw_host, u.port, self._unix_socket)
        target = u.raw_path_qs or "/"
        if len(self._targets) >= _TARGETS_KEPT:
            self._targets.clear()
        self._targets[key] = (origin, target)
        return origin, target

    def _pool(self, origin: Origin) -> Pool:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # Pools belong to the loop that opened their sockets.
            self._loop = loop
            self._pools = {}
        pool = self._pools.get(origin.key)
        if pool is None or pool.closed:
            pool = self._pools[origin.key] = Pool(
                loop, origin, limit=self._limit, tls=self._ssl,
                connect_timeout=self.timeouts.connect, tick=self._tick)
        return pool

    def request(self, method: str, path: str, *, body: bytes | None = None,
                headers: Headers | None = None,
                encoded: bool = False) -> Coroutine[Any, Any, UpstreamResponse]:
        """``encoded=True``: the path is already percent-encoded and goes out byte for byte
        (a signed request must send exactly the path it signed). Not itself a coroutine
        function, so that with tracing off awaiting it costs no extra frame."""
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        tracer = spans.TRACER
        if tracer is None:
            return self._send(method, url, body, headers, encoded, None)
        return self._traced(tracer, method, url, body, headers, encoded)

    async def _traced(self, tracer: spans.Tracer, method: str, url: str, body: bytes | None,
                      headers: Headers | None, encoded: bool) -> UpstreamResponse:
        traced = dict(headers or {})
        span = tracer.upstream(method, url, traced)  # adds the traceparent
        try:
            resp = await self._send(method, url, body, traced, encoded, span)
        except BaseException as e:
            span.end(getattr(e, "kind", type(e).__name__))
            raise
        span.set("http.response.status_code", resp.status)
        return resp

    async def _send(self, method: str, url: str, body: bytes | None,
                    headers: Headers | None, encoded: bool,
                    span: Span | None) -> UpstreamResponse:
        origin, target = self._resolve(url, encoded)
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        try:
            head = request_head(method, target, origin.host_header, headers,
                                None if body is None else len(body))
        except ValueError as e:
            raise InvalidRequest(str(e)) from None
        pool = self._pool(origin)
        t = self.timeouts
        for attempt in (0, 1):
            try:
                # (a kept-alive connection taken without a coroutine: the common case)
                conn = pool.take_idle()
                if conn is not None:
                    reused = True
                else:
                    conn, reused = await pool.acquire()
            except H1Timeout:
                raise UpstreamTimeout("upstream did not accept a connection in time") \
                    from None
            except H1Error as e:
                raise TransportError(f"cannot reach upstream: {e}") from None
            answered = conn.start(head, body, reused, t.first_byte, t.idle, t.total)
            try:
                blocked = conn.write_blocked()
                if blocked is not None:
                    await blocked
                await answered
            except StaleConnection:
                conn.finish(False)
                if attempt == 0 and method in IDEMPOTENT:
                    continue
                raise TransportError("cannot reach upstream: it closed a kept-alive "
                                     "connection") from None
            except H1Timeout:
                conn.finish(False)
                raise UpstreamTimeout("upstream did not answer in time") from None
            except H1Error as e:
                conn.finish(False)
                raise TransportError(f"cannot reach upstream: {e}") from None
            except BaseException:
                conn.finish(False)
                raise
            if method == "HEAD":
                conn.end_without_body()
            return UpstreamResponse(conn, span)
        raise AssertionError("unreachable")

    @property
    def open_connections(self) -> int:
        """Connections open or being opened, over every origin."""
        return sum(p.open for p in self._pools.values())

    async def aclose(self) -> None:
        # The closed pools stay in the table (a later request replaces them) so that
        # ``open_connections`` still counts connections that are closing.
        for pool in self._pools.values():
            pool.close()
        if self._pools:
            await asyncio.sleep(0)  # let the closed transports report connection_lost

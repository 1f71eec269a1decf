"""dragoman's HTTP/1 server protocol: uvicorn's httptools protocol, plus request-head
limits, read timeouts, and HTTP/1.0 streams delimited by closing the connection.

uvicorn (uvloop + httptools) stays the server: it is the fastest stack measured in
bench/. Unguarded it accepts a request head of any size (httptools joins the pieces of a
header value by repeated concatenation on the event loop: a 48 MB header stalled every
other connection for seconds), any number of headers, and waits forever for a slow head
or body. The guard sits in front of the parser and in its callbacks, so nothing grows
with an attacker's input past the limits:

- **head size** (``max_head_bytes``): bytes are counted *before* they reach the parser;
  a read that would take the head past the limit is refused unless the head ends in it.
  Answered 431 and closed.
- **header count** (``max_headers``): 431; **request target** (``max_request_line``): 414.
- **head timeout**: a connection must deliver each request head within ``head_timeout``
  of starting it (a new connection: of connecting). 408, or a silent close if nothing
  came at all. **Body timeout**: at most ``body_timeout`` between two reads of a body
  (not counting time the application is not reading). 408 if the answer has not
  started, else a close. **Keep-alive**: an idle connection closes after
  ``keepalive_timeout`` (uvicorn's own timer).
- **HTTP/1.0**: uvicorn frames an answer without ``Content-Length`` as chunked even for
  an HTTP/1.0 request, which RFC 9112 §6.1 forbids; such an answer (an SSE stream) is
  sent unframed and ends when the connection closes.

Cost on the hot path (a keep-alive request whose head arrives in one read): a few
integer comparisons per read and per request, no timer (one per connection for its first
head), no extra call per header. Measured in bench/README.md.

A refused request gets a small JSON error both SDK families can read (``error.message``);
the connection then reads and drops what the client is still sending for a moment before
closing, so the client sees the answer rather than a reset ("lingering close").
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import uvicorn
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from .http_limits import HttpLimits


class LimitedConfig(uvicorn.Config):
    """uvicorn's config, carrying the limits to every connection (worker processes get
    the config pickled, limits included) and serving with the guarded protocol."""

    def __init__(self, app: Any, *, limits: HttpLimits | None = None, **kw: Any) -> None:
        super().__init__(app, http=GuardedHttpToolsProtocol, **kw)
        self.limits = limits or HttpLimits()


#: ``_head_bytes`` values besides a count: the head is complete (a body may be read), or
#: the request was refused and the connection drops what it reads until it closes.
_HEAD_DONE = -1
_DISCARDING = -2
#: how long a refused connection keeps reading (and dropping) before it closes
_LINGER = 2.0
_UNTIL_CLOSE = 1 << 62

_encode = msgspec.json.Encoder().encode

#: the headers uvicorn's ``ProxyHeadersMiddleware`` reads: without either it changes nothing
_FORWARDED = frozenset({b"x-forwarded-for", b"x-forwarded-proto"})


# The parent's methods, called directly on the per-request path (cheaper than super()).
_parent_data_received = HttpToolsProtocol.data_received
_parent_headers_complete = HttpToolsProtocol.on_headers_complete
_parent_message_complete = HttpToolsProtocol.on_message_complete


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a head that broke a limit."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, config: uvicorn.Config, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = config.limits if isinstance(config, LimitedConfig) else HttpLimits()
        self._limits = limits
        # (read per request and per header: one attribute each, not two)
        self._max_head = limits.max_head_bytes
        self._max_headers = limits.max_headers
        self._max_url = limits.max_request_line
        self.timeout_keep_alive = limits.keepalive_timeout  # type: ignore[assignment]
        #: bytes of the request head read so far, or ``_HEAD_DONE`` / ``_DISCARDING``
        self._head_bytes = 0
        self._head_tail = b""  # the last bytes of a head split over reads
        self._refusal: tuple[int, str] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_read = 0.0
        #: when the connection last went idle (its answer done), None while busy; the
        #: keep-alive timer reads it when it fires (see ``on_response_complete``)
        self._idle_since: float | None = None
        # uvicorn wraps the app in ``ProxyHeadersMiddleware`` (``proxy_headers``, on by
        # default): a coroutine and a pass over the headers per request, which change
        # nothing unless the request has an X-Forwarded-For or -Proto header. The app
        # runs bare, and through the middleware for a request that has one.
        self._proxied_app: Any = None
        self._forwarded = False
        if isinstance(self.app, ProxyHeadersMiddleware):
            self._proxied_app = self.app
            self.app = self.app.app

    # -- connection ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self._limits.head_timeout)  # a connection that never sends a head

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        keepalive = self.timeout_keep_alive_task
        if keepalive is not None:
            keepalive.cancel()
            self.timeout_keep_alive_task = None
        super().connection_lost(exc)

    # -- keep-alive ----------------------------------------------------------------------
    # uvicorn arms a keep-alive timer after every answer and cancels it on the next read:
    # a timer per request (~7 µs under uvloop, bench/README.md). Here the connection only
    # notes when it went idle; one timer per connection, armed when none is pending,
    # closes it once it has been idle ``timeout_keep_alive`` since that moment, or
    # re-arms for the rest. Same deadline, no timer churn.

    def _unset_keepalive_if_required(self) -> None:
        # (uvicorn's, on every read: the connection is busy, the pending timer stays)
        self._idle_since = None

    def on_response_complete(self) -> None:
        # uvicorn's, with the idle moment noted instead of a new timer
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            self._idle_since = None
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self._keepalive_expired)

    def _keepalive_expired(self) -> None:
        self.timeout_keep_alive_task = None
        since = self._idle_since
        if since is None:
            return  # busy since: re-armed when its answer is done
        left = since + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self.timeout_keep_alive_task = self.loop.call_later(left, self._keepalive_expired)
        elif not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        head = self._head_bytes
        if head != _HEAD_DONE:
            if head == _DISCARDING:
                return
            head += len(data)
            self._head_bytes = head
            if head > self._max_head and not self._head_ends_in(data):
                self._refuse(431, "The request header fields are too large: the limit is "
                             f"{self._limits.max_head_bytes} bytes.")
                return
        _parent_data_received(self, data)
        head = self._head_bytes
        if head > 0:  # a head split over reads: its clock runs
            self._head_tail = data[-3:]
            if self._timer is None:
                self._arm(self._limits.head_timeout)
        elif head == _HEAD_DONE:  # a body split over reads: its clock runs
            self._last_read = self.loop.time()
            if self._timer is None:
                self._arm(self._limits.body_timeout)

    def _head_ends_in(self, data: bytes) -> bool:
        """Whether the head ends in ``data`` within the limit (the rest of the read is
        body, or the next request)."""
        before = self._head_bytes - len(data)
        room = self._limits.max_head_bytes - before
        window = (self._head_tail if before else b"") + data[:max(room, 0)]
        return b"\r\n\r\n" in window or b"\n\n" in window

    # -- parser callbacks --------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self._max_url:
            self._refusal = (414, "The request URL is too long: the limit is "
                                  f"{self._limits.max_request_line} bytes.")
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= self._max_headers:
            self._refusal = (431, "The request has too many header fields: the limit is "
                                  f"{self._limits.max_headers}.")
            raise _Refused
        # uvicorn's own on_header, inlined: a super() call per header is a frame per header
        name = name.lower()
        value = value.rstrip(b" \t")
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        elif name in _FORWARDED:
            self._forwarded = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._head_bytes = _HEAD_DONE
        if self._timer is not None:
            self._disarm()
        if self._forwarded and self._proxied_app is not None:
            self._forwarded = False
            bare, self.app = self.app, self._proxied_app
            try:
                _parent_headers_complete(self)  # (the cycle and its app are made here)
            finally:
                self.app = bare
        else:
            _parent_headers_complete(self)
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:
            # The cycle's task has not run yet; its methods are looked up when it does.
            cycle.__class__ = _Http10Cycle if self.scope["http_version"] == "1.0" \
                else _Cycle

    def on_message_complete(self) -> None:
        self._head_bytes = 0
        if self._timer is not None:
            self._disarm()
        _parent_message_complete(self)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to any parser error, a callback's ``_Refused`` included."""
        status, reason = self._refusal or (400, "The request is not valid HTTP/1.1.")
        self._refuse(status, reason)

    # -- refusing and timing out ----------------------------------------------------------

    def _refuse(self, status: int, reason: str) -> None:
        """Answer ``status`` and close (lingering), unless an answer is already on the
        wire (a pipelined request behind a stream): then only close."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the application's receive() sees a disconnect
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
        body = _encode({"type": "error", "error": {"type": "invalid_request_error",
                                                   "message": reason, "code": None}})
        self.transport.write(b"".join([
            STATUS_LINE[status], b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n", body]))
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the client may stop reading; we read on a moment
        self._head_bytes = _DISCARDING
        self._arm(_LINGER)

    def _arm(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_later(delay, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        head = self._head_bytes
        if head == _DISCARDING:
            self.transport.close()
        elif head == _HEAD_DONE:
            self._body_expired()
        elif self.cycle is not None and not self.cycle.response_complete:
            self._arm(self._limits.head_timeout)  # still answering: not idle yet
        elif head == 0:
            self.transport.close()  # connected, and never sent a byte
        else:
            self._refuse(408, "The request head did not arrive within "
                              f"{self._limits.head_timeout:g} s.")

    def _body_expired(self) -> None:
        cycle = self.cycle
        if cycle is None or not cycle.more_body or cycle.response_complete:
            return
        limit = self._limits.body_timeout
        if self.flow.read_paused:  # the application has not read what came yet
            self._arm(limit)
            return
        idle = self.loop.time() - self._last_read
        if idle < limit:
            self._arm(limit - idle)
            return
        self._refuse(408, f"The request body paused for more than {limit:g} s.")


class _HeldHead:
    """The connection's transport while an answer's head waits for its first body part:
    what is written is held, and goes out in one write when ``flush`` is called (or the
    connection closed)."""

    __slots__ = ("held", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.held: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.held.append(data)

    def flush(self) -> None:
        held = self.held
        if held:
            self.held = []
            if not self.transport.is_closing():  # (the client left meanwhile)
                self.transport.write(held[0] if len(held) == 1 else b"".join(held))

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def close(self) -> None:
        self.flush()
        self.transport.close()


class _Cycle(RequestResponseCycle):
    """uvicorn's request/response cycle with an answer's head sent in the same write as
    the first part of its body: uvicorn writes the head at once, a write (a TCP segment,
    a wake-up of the client) of its own. Every answer here sends its first body part
    right after its head (a stream's head goes once its first event is in hand), so
    holding the head delays nothing (bench/README.md, "Head and first read in one
    write")."""

    async def send(self, message: Any) -> None:
        transport: Any = self.transport
        if type(transport) is _HeldHead:  # the first body part (or an error)
            try:
                await _parent_send(self, message)
            finally:
                self.transport = transport.transport
                transport.flush()
        elif not self.response_started and message["type"] == "http.response.start":
            held = self.transport = _HeldHead(transport)  # type: ignore[assignment]
            try:
                await _parent_send(self, message)
            except BaseException:
                self.transport = transport
                raise
            if not held.held:  # (disconnected: uvicorn wrote nothing)
                self.transport = transport
        else:
            await _parent_send(self, message)


_parent_send = RequestResponseCycle.send


class _Http10Cycle(_Cycle):
    """An HTTP/1.0 exchange: an answer without ``Content-Length`` is sent unframed and
    ends with the connection (HTTP/1.0 has no chunked coding); uvicorn closes HTTP/1.0
    connections after each answer anyway."""

    _until_close = False

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.start":
            if not self.response_started and not any(
                    name.lower() in (b"content-length", b"transfer-encoding")
                    for name, _ in message.get("headers", ())):
                self._until_close = True
                self.chunked_encoding = False  # (None would make uvicorn add chunked)
                self.expected_content_length = _UNTIL_CLOSE
        elif self._until_close and not message.get("more_body", False):
            # The last part: what uvicorn checks the announced length against.
            self.expected_content_length = len(message.get("body", b""))
        await super().send(message)

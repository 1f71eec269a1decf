"""Connections to one origin: the limit and its waiters, idle connections and their
expiry, connecting (DNS cache, Happy Eyeballs, TLS) and the deadline watchdog."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohappyeyeballs

from .connection import Connection
from .wire import H1Error, H1Timeout

#: Seconds an idle keep-alive connection is kept (aiohttp's default, below the usual
#: server-side idle limits of 60-120 s, so a reused connection is rarely a stale one).
KEEPALIVE = 15.0
#: A timer may fire this much before its time (the loop's clock resolution): a connection
#: that close to its expiry is closed, not given a timer of its own.
_TIMER_SLACK = 0.001
#: Seconds resolved addresses of an origin are reused (aiohttp's ``ttl_dns_cache``).
DNS_TTL = 300.0
#: Happy Eyeballs (RFC 8305): the next address is tried after this many seconds.
HAPPY_EYEBALLS_DELAY = 0.25


class Origin:
    """Where a pool connects: ``scheme://host:port`` or a Unix socket path."""

    __slots__ = ("address", "host", "host_header", "key", "port", "tls", "unix")

    def __init__(self, scheme: str, host: str, port: int | None, unix: str | None = None) -> None:
        self.tls = scheme == "https"
        self.host = host
        default = 443 if self.tls else 80
        self.port = port or default
        self.unix = unix
        bracketed = f"[{host}]" if ":" in host else host
        self.host_header = bracketed if self.port == default else f"{bracketed}:{self.port}"
        self.key = (scheme, host, self.port, unix)
        #: for errors: the operator's own config, never a credential (no userinfo, no path)
        self.address = f"unix:{unix}" if unix else f"{bracketed}:{self.port}"


_default_tls: ssl.SSLContext | None = None


def default_tls() -> ssl.SSLContext:
    """The system's trust store, certificate and host name verified, HTTP/1.1 by ALPN."""
    global _default_tls
    if _default_tls is None:
        ctx = ssl.create_default_context()
        ctx.set_alpn_protocols(["http/1.1"])
        _default_tls = ctx
    return _default_tls


class Pool:
    """Connections to one origin: at most ``limit`` open (0: no limit), idle ones reused
    newest first, callers past the limit served in arrival order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: Origin, *, limit: int,
                 tls: ssl.SSLContext | None, connect_timeout: float | None,
                 tick: float = 1.0) -> None:
        """``tick``: how often the watchdog checks the deadlines of exchanges in flight;
        a timeout fires up to one tick late."""
        self.loop = loop
        #: the loop's clock, read without a frame: asyncio's ``BaseEventLoop.time`` is a
        #: Python method that returns ``time.monotonic()`` (a frame per read, four reads
        #: per exchange); uvloop's is C already (bench/README.md, session 10)
        self.now: Callable[[], float] = time.monotonic \
            if type(loop).time is asyncio.BaseEventLoop.time else loop.time
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

    def take_idle(self) -> Connection | None:
        """A kept-alive connection to reuse, if one is idle: what ``acquire`` returns
        first, without a coroutine (the common case of a pool in use)."""
        idle = self._idle
        if idle:
            now = self.now()
            while idle:
                c = idle.pop()
                if not c.closed and now - c.idle_since < KEEPALIVE:
                    return c
                c._close()
        return None

    async def acquire(self) -> tuple[Connection, bool]:
        """A connection and whether it carried an exchange before."""
        c = self.take_idle()
        if c is not None:
            return c, True
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
                raise H1Timeout(f"connecting to {o.address} timed out") from None
            if isinstance(e, ssl.SSLCertVerificationError):
                raise H1Error(f"upstream TLS certificate of {o.address} rejected") from None
            if isinstance(e, (OSError, ssl.SSLError)):
                raise H1Error(f"cannot connect to {o.address} ({type(e).__name__})") from None
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
        conn.idle_since = self.now()
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
        now = self.now()
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
        """Close the idle connections whose ``KEEPALIVE`` ran out and re-arm for the
        oldest one left, so each closes ``KEEPALIVE`` after its release (not up to twice
        that: a fixed period would let one released just after the timer was armed wait
        a whole extra period). ``_idle`` is in release order, so the oldest is first."""
        self._sweep = None
        now = self.now()
        keep = []
        for c in self._idle:
            if now - c.idle_since >= KEEPALIVE - _TIMER_SLACK:
                c._close()
            else:
                keep.append(c)
        self._idle = keep
        if keep and not self.closed:
            self._sweep = self.loop.call_later(keep[0].idle_since + KEEPALIVE - now,
                                               self._sweep_idle)

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

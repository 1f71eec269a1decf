"""A raw HTTP/1.1 server for wire-level tests: each connection runs a script that reads
requests and writes exact bytes, and the server records what it saw (connections accepted,
how many were open at once, the requests, which connections the client closed)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType


@dataclass
class Request:
    """One request as the server read it off the wire."""

    conn: int  # index of the connection it came on (0: the first accepted)
    head: bytes  # request line and header lines, without the blank line
    body: bytes

    @property
    def line(self) -> bytes:
        return self.head.split(b"\r\n", 1)[0]

    @property
    def method(self) -> str:
        return self.line.split(b" ", 1)[0].decode()

    def header(self, name: str) -> list[str]:
        out = []
        for raw in self.head.split(b"\r\n")[1:]:
            k, _, v = raw.partition(b":")
            if k.decode().lower() == name.lower():
                out.append(v.strip().decode())
        return out


class Peer:
    """One accepted connection, as the script sees it."""

    def __init__(self, server: RawServer, index: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.index = index
        self.reader = reader
        self.writer = writer

    async def request(self) -> Request | None:
        """The next request (recorded on the server), or None when the client closed."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.server.client_closed(self.index)
            return None
        req = Request(self.index, head[:-4], b"")
        length = req.header("content-length")
        if length:
            req.body = await self.reader.readexactly(int(length[0]))
        self.server.requests.append(req)
        return req

    async def send(self, *parts: bytes, pause: float = 0.0) -> None:
        """Each part in its own write (flushed, then ``pause`` seconds before the next)."""
        for i, part in enumerate(parts):
            if i and pause:
                await asyncio.sleep(pause)
            self.writer.write(part)
            await self.writer.drain()

    async def until_closed(self) -> None:
        """Wait, reading nothing of use, until the client closes the connection."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionError:
            pass
        self.server.client_closed(self.index)


Script = Callable[[Peer], Awaitable[None]]


class RawServer:
    """A TCP (or Unix socket, or TLS) server that runs ``script`` on each connection and
    records what it saw: connections accepted, how many were open at once, the requests,
    and which connections the client closed."""

    def __init__(self, script: Script, *, tls: ssl.SSLContext | None = None,
                 unix: str | None = None) -> None:
        self.script = script
        self.tls = tls
        self.unix = unix
        self.accepted = 0
        self.live = 0
        self.max_live = 0
        self.requests: list[Request] = []
        self.closed_by_client: list[int] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> RawServer:
        if self.unix is not None:
            self._server = await asyncio.start_unix_server(self._handle, self.unix)
        else:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0,
                                                      ssl=self.tls)
            self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        index = self.accepted
        self.accepted += 1
        self.live += 1
        self.max_live = max(self.max_live, self.live)
        try:
            await self.script(Peer(self, index, reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            self.client_closed(index)  # (or reset) while the script used the connection
        except asyncio.CancelledError:
            pass  # only __aexit__ cancels; asyncio's stream callback then logs no error
        finally:
            self.live -= 1  # before the close: the client sees the close after this
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._tasks.discard(task)

    def client_closed(self, index: int) -> None:
        if index not in self.closed_by_client:
            self.closed_by_client.append(index)

    def seen(self, method: str) -> int:
        return sum(1 for r in self.requests if r.method == method)


def response(body: bytes = b"", *headers: str, status: str = "200 OK",
             length: bool = True) -> bytes:
    lines = [f"HTTP/1.1 {status}", *headers]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def answering(*answers: bytes) -> Script:
    """Each request on a connection gets the next answer (the last one repeats) until
    the client closes."""
    async def script(p: Peer) -> None:
        i = 0
        while await p.request() is not None:
            p.writer.write(answers[min(i, len(answers) - 1)])
            await p.writer.drain()
            i += 1
    return script



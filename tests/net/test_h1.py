"""``net.h1`` (through ``net.http.HttpClient``) against scripted raw servers on real sockets:
each test's server writes exact bytes, so framing, keep-alive, timeouts, back-pressure and
failures are all under the test's control and what the server received is checked."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import random
import shutil
import ssl
import tempfile
import time
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import trustme

from dragoman.core import InvalidRequest, TransportError, UpstreamTimeout
from dragoman.net import h1
from dragoman.net.http import HttpClient, Timeouts, UpstreamResponse
from tests.fakes.raw_server import Peer, RawServer, Script, answering, response


@contextlib.asynccontextmanager
async def client(base: str, *, timeouts: Timeouts | None = None, limit: int = 16,
                 unix_socket: str | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[HttpClient]:
    c = HttpClient(base, timeouts=timeouts, limit=limit, unix_socket=unix_socket,
                   ssl_context=ssl_context)
    try:
        yield c
    finally:
        await c.aclose()


async def eventually(pred: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def get(c: HttpClient, path: str = "/", method: str = "GET", *, body: bytes | None = None,
              headers: dict[str, str] | None = None, encoded: bool = False) -> bytes:
    """Body of a whole exchange, the connection handed back."""
    resp = await c.request(method, path, body=body, headers=headers, encoded=encoded)
    data = await resp.read()
    resp.release()
    return data


async def body_of(resp: UpstreamResponse, how: str) -> tuple[bytes, int]:
    """(body, number of chunks it came in) by ``read()`` or ``iter_chunks()``."""
    if how == "read":
        return await resp.read(), 1
    chunks = [c async for c in resp.iter_chunks()]
    assert all(chunks), "iter_chunks yielded an empty chunk"
    return b"".join(chunks), len(chunks)


READERS = pytest.mark.parametrize("how", ["read", "iter_chunks"])


# --- 1. framing -----------------------------------------------------------------------------


@READERS
async def test_content_length_body(how: str) -> None:
    async with RawServer(answering(response(b"hello world", "Content-Type: text/plain"))) as srv, \
            client(srv.url) as c:
        resp = await c.request("GET", "/x")
        assert resp.status == 200
        assert (await body_of(resp, how))[0] == b"hello world"
        resp.release()
        assert srv.requests[0].line == b"GET /x HTTP/1.1"


@READERS
async def test_chunked_body_in_separate_writes(how: str) -> None:
    async def script(p: Peer) -> None:
        await p.request()
        await p.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                     b"5\r\nhello\r\n", b"1\r\n \r\n", b"6;ext=1\r\nworld!\r\n", b"0\r\n\r\n",
                     pause=0.02)
        await answering(response())(p)

    async with RawServer(script) as srv, client(srv.url) as c:
        resp = await c.request("GET", "/")
        body, n = await body_of(resp, how)
        assert body == b"hello world!"
        if how == "iter_chunks":
            assert n >= 3  # the chunks came as they were written, not all at the end
        resp.release()
        # a complete chunked answer leaves the connection reusable
        assert await get(c) == b""
        assert srv.accepted == 1


@READERS
async def test_body_read_until_close(how: str) -> None:
    async def script(p: Peer) -> None:
        await p.request()
        await p.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", b"part one, ",
                     b"part two", pause=0.02)
        # returning closes the connection: the end of the body

    async with RawServer(script) as srv, client(srv.url) as c:
        resp = await c.request("GET", "/")
        assert (await body_of(resp, how))[0] == b"part one, part two"
        resp.release()
        await eventually(lambda: c.open_connections == 0)


async def test_no_content_answer_keeps_the_connection() -> None:
    async with RawServer(answering(response(status="204 No Content", length=False),
                                   response(b"next"))) as srv, client(srv.url) as c:
        resp = await c.request("GET", "/")
        assert resp.status == 204
        assert await asyncio.wait_for(resp.read(), 2) == b""
        resp.release()
        assert await get(c) == b"next"
        assert srv.accepted == 1


# --- 2. keep-alive --------------------------------------------------------------------------


async def test_keep_alive_reuses_one_connection() -> None:
    async with RawServer(answering(response(b"one"), response(b"two"))) as srv, \
            client(srv.url) as c:
        assert await get(c, "/1") == b"one"
        assert await get(c, "/2") == b"two"
        assert srv.accepted == 1
        assert [(r.conn, r.line) for r in srv.requests] == [
            (0, b"GET /1 HTTP/1.1"), (0, b"GET /2 HTTP/1.1")]
        assert c.open_connections == 1


async def test_connection_close_answer_is_not_reused() -> None:
    # The server says ``Connection: close`` but leaves the socket open: the client must
    # close it itself and open a new connection for the next request.
    async with RawServer(answering(response(b"bye", "Connection: close"))) as srv, \
            client(srv.url) as c:
        assert await get(c) == b"bye"
        assert await get(c) == b"bye"
        assert srv.accepted == 2
        assert [r.conn for r in srv.requests] == [0, 1]
        await eventually(lambda: 0 in srv.closed_by_client)


async def test_an_idle_connection_closes_keepalive_seconds_after_its_release(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Connection 1 is released first and arms the pool's one sweep timer; connection 0 is
    # released part-way through that timer's period. Each must close KEEPALIVE after its
    # own release (a fixed-period sweep let the later one wait up to twice that).
    keepalive = 1.0
    monkeypatch.setattr(h1.pool, "KEEPALIVE", keepalive)  # where it is read
    closed_at: dict[int, float] = {}

    async def script(p: Peer) -> None:
        req = await p.request()
        assert req is not None
        if req.line.startswith(b"GET /slow"):
            await asyncio.sleep(keepalive * 0.6)
        await p.send(response(b"ok"))
        await p.until_closed()
        closed_at[p.index] = time.monotonic()

    async with RawServer(script) as srv, client(srv.url) as c:
        slow = asyncio.create_task(get(c, "/slow"))  # connection 0, busy for a while
        await eventually(lambda: len(srv.requests) == 1)
        assert await get(c, "/fast") == b"ok"  # connection 1, idle from now
        released = {1: time.monotonic()}
        assert await slow == b"ok"
        released[0] = time.monotonic()
        await eventually(lambda: len(closed_at) == 2, timeout=keepalive * 3)
        assert srv.accepted == 2
        for conn in (0, 1):
            assert keepalive - 0.05 <= closed_at[conn] - released[conn] <= keepalive + 0.25, (
                conn, closed_at[conn] - released[conn])
        assert c.open_connections == 0


@pytest.mark.parametrize("extra", [
    b"HTTP/1.1 200 OK\r\n",
    response(b"evil", "X-Second: 1", status="299 Smuggled"),
], ids=["partial-head", "whole-answer"])
@pytest.mark.parametrize("split", [False, True], ids=["same-write", "later-write"])
async def test_bytes_past_the_end_of_the_answer_drop_the_connection(
        extra: bytes, split: bool) -> None:
    # Whether they come in the same read as the answer or later, they must neither leak
    # into this answer nor be taken as the start of the next one.
    async def script(p: Peer) -> None:
        while await p.request() is not None:
            await p.send(response(b"ok", "X-First: 1"), extra, pause=0.05 if split else 0)

    async with RawServer(script) as srv, client(srv.url) as c:
        resp = await c.request("GET", "/")
        assert resp.status == 200
        if split:
            await asyncio.sleep(0.1)
        assert await resp.read() == b"ok"
        assert "x-second" not in resp.headers and resp.headers["x-first"] == "1"
        resp.release()
        await eventually(lambda: 0 in srv.closed_by_client)
        assert await get(c) == b"ok"
        assert srv.accepted == 2


async def test_junk_with_the_end_of_a_body_being_waited_for_loses_nothing() -> None:
    # The consumer is already waiting for the rest of the body when it arrives in one read
    # with junk after it: the body is delivered whole, the connection dropped.
    async def script(p: Peer) -> None:
        while await p.request() is not None:
            await p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234",
                         b"56789HTTP/1.1 299 Junk\r\n\r\n", pause=0.1)

    async with RawServer(script) as srv, client(srv.url) as c:
        resp = await c.request("GET", "/")
        assert await resp.read() == b"0123456789"
        resp.release()
        await eventually(lambda: 0 in srv.closed_by_client)


# --- 3. interim answers ---------------------------------------------------------------------

INTERIM = (b"HTTP/1.1 100 Continue\r\n\r\n",
           b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
           b"HTTP/1.1 201 Created\r\nX-Final: yes\r\nContent-Length: 4\r\n\r\ndone")


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "separate-writes"])
async def test_interim_answers_are_skipped(split: bool) -> None:
    async def script(p: Peer) -> None:
        while await p.request() is not None:
            if split:
                await p.send(*INTERIM, pause=0.02)
            else:
                await p.send(b"".join(INTERIM))

    async with RawServer(script) as srv, client(srv.url) as c:
        for _ in range(2):
            resp = await c.request("POST", "/", body=b"{}")
            assert resp.status == 201
            assert resp.headers["x-final"] == "yes"
            assert "link" not in resp.headers
            assert await resp.read() == b"done"
            resp.release()
        assert srv.accepted == 1  # and the connection stays usable after them


# --- 4. compressed bodies -------------------------------------------------------------------

PLAIN = b"".join(b"line %d of a compressible body\n" % i for i in range(20000))


def raw_deflate(data: bytes) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return z.compress(data) + z.flush()


@pytest.mark.parametrize(("encoding", "packed"), [
    ("gzip", gzip.compress(PLAIN)),
    ("deflate", zlib.compress(PLAIN)),
    ("deflate", raw_deflate(PLAIN)),
], ids=["gzip", "deflate-zlib", "deflate-raw"])
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
async def test_compressed_bodies_are_inflated(encoding: str, packed: bytes, chunked: bool) -> None:
    async def script(p: Peer) -> None:
        await p.request()
        if not chunked:
            await p.send(response(packed, f"Content-Encoding: {encoding}"))
        else:
            parts = [packed[i:i + 997] for i in range(0, len(packed), 997)]
            await p.send(f"HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n".encode(),
                         *(b"%x\r\n%s\r\n" % (len(x), x) for x in parts), b"0\r\n\r\n")
        await p.until_closed()

    async with RawServer(script) as srv, client(srv.url) as c:
        assert await get(c) == PLAIN
        assert srv.accepted == 1


async def test_corrupt_compressed_body_is_a_transport_error() -> None:
    bad = b"\x1f\x8b\x08\x00garbage that is not gzip at all"
    async with RawServer(answering(response(bad, "Content-Encoding: gzip"))) as srv, \
            client(srv.url) as c:
        resp = await c.request("GET", "/")
        with pytest.raises(TransportError):
            await resp.read()
        resp.release()
        await eventually(lambda: c.open_connections == 0)


# --- 5. malformed answers -------------------------------------------------------------------


@pytest.mark.parametrize("garbage", [
    b"HTTP/1.1 abc OK\r\n\r\n",
    b"SSH-2.0-OpenSSH_9.6\r\n",
    b"\x00\x01\x02\x03 binary noise\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nBad Header Line\r\n\r\n",
], ids=["status-code", "not-http", "binary", "content-length", "header-line"])
async def test_malformed_answer_is_a_transport_error(garbage: bytes) -> None:
    async def script(p: Peer) -> None:
        await p.request()
        await p.send(garbage)
        await p.until_closed()

    async with RawServer(script) as srv, client(srv.url) as c:
        with pytest.raises(TransportError):
            await c.request("GET", "/")
        await eventually(lambda: 0 in srv.closed_by_client)
        assert c.open_connections == 0


def head_of_size(n: int) -> bytes:
    """A response head of exactly ``n`` bytes (blank line not counted), body ``ok``."""
    start = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Big: "
    return start + b"a" * (n - len(start))


def answering_head(head: bytes, split: bool) -> Script:
    """Answer with ``head`` (in one write, or split 1,000 bytes before its end), then the
    blank line and the body ``ok``."""
    async def script(p: Peer) -> None:
        await p.request()
        await p.send(*([head[:-1000], head[-1000:]] if split else [head]),
                     b"\r\n\r\nok", pause=0.05)
        await p.until_closed()
    return script


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (h1.MAX_HEAD + 10),
    b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H-%d: %s\r\n" % (i, b"v" * 100)
                                     for i in range(h1.MAX_HEAD // 100)),
    head_of_size(h1.MAX_HEAD + 1),
], ids=["one-header", "many-headers", "one-byte-over"])
@pytest.mark.parametrize("split", [False, True], ids=["one-write", "two-writes"])
async def test_oversized_head_is_a_transport_error(head: bytes, split: bool) -> None:
    script = answering_head(head, split)

    async with RawServer(script) as srv, client(srv.url) as c:
        with pytest.raises(TransportError):
            await c.request("GET", "/")
        await eventually(lambda: 0 in srv.closed_by_client)


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "two-writes"])
async def test_head_of_exactly_max_head_is_accepted(split: bool) -> None:
    head = head_of_size(h1.MAX_HEAD)

    script = answering_head(head, split)

    async with RawServer(script) as srv, client(srv.url) as c:
        resp = await c.request("GET", "/")
        assert len(resp.headers["x-big"]) > h1.MAX_HEAD - 100
        assert await resp.read() == b"ok"
        resp.release()


async def test_small_head_split_from_a_large_body_is_not_oversized() -> None:
    # The first read gets only the status line; the next one the rest of the head and a
    # full read's worth of body: only head bytes count against MAX_HEAD. (A first
    # exchange with a big body lets the client's receive window grow, so that the second
    # read is a full one.)
    body = random.Random(3).randbytes(4 << 20)

    async def script(p: Peer) -> None:
        await p.request()
        await p.send(response(body))
        await p.request()
        await p.send(b"HTTP/1.1 200 OK\r\n",
                     b"Content-Length: %d\r\nX-A: b\r\n\r\n" % len(body) + body, pause=0.05)
        await p.until_closed()

    async with RawServer(script) as srv, client(srv.url) as c:
        assert await get(c) == body
        resp = await c.request("GET", "/")
        assert resp.headers["x-a"] == "b"
        assert await resp.read() == body
        resp.release()
        assert srv.accepted == 1


# --- 6. closed connections ------------------------------------------------------------------


@pytest.mark.parametrize("when", ["on-accept", "after-request", "mid-head"])
async def test_fresh_connection_closed_before_an_answer(when: str) -> None:
    async def script(p: Peer) -> None:
        if when != "on-accept":
            await p.request()
        if when == "mid-head":
            await p.send(b"HTTP/1.1 200 OK\r\nContent-")

    async with RawServer(script) as srv, client(srv.url) as c:
        with pytest.raises(TransportError):
            await c.request("GET", "/")
        assert srv.accepted == 1  # a fresh connection is never retried
        await eventually(lambda: c.open_connections == 0)


async def test_body_cut_short_is_a_transport_error() -> None:
    async def script(p: Peer) -> None:
        await p.request()
        await p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")

    async with RawServer(script) as srv, client(srv.url) as c:
        resp = await c.request("GET", "/")
        with pytest.raises(TransportError):
            await resp.read()
        resp.close()
        resp = await c.request("GET", "/")
        chunks: list[bytes] = []
        with pytest.raises(TransportError):
            async for chunk in resp.iter_chunks():
                chunks.append(chunk)
        assert b"".join(chunks) == b"only this"
        resp.close()
        assert srv.accepted == 2


def stale_after_first() -> Script:
    """Connection 0 answers its first request, then reads the next one and closes without
    answering (a keep-alive connection the server dropped); later connections answer."""
    async def script(p: Peer) -> None:
        if p.index == 0:
            await p.request()
            await p.send(response(b"first"))
            await p.request()
            return
        await answering(response(b"fresh"))(p)
    return script


async def test_reused_connection_closed_is_retried_for_get() -> None:
    async with RawServer(stale_after_first()) as srv, client(srv.url) as c:
        assert await get(c) == b"first"
        assert await get(c, "/again") == b"fresh"
        assert srv.accepted == 2
        assert [(r.conn, r.line) for r in srv.requests] == [
            (0, b"GET / HTTP/1.1"), (0, b"GET /again HTTP/1.1"), (1, b"GET /again HTTP/1.1")]


async def test_reused_connection_closed_is_not_retried_for_post() -> None:
    async with RawServer(stale_after_first()) as srv, client(srv.url) as c:
        assert await get(c) == b"first"
        with pytest.raises(TransportError):
            await c.request("POST", "/v1/chat", body=b'{"x": 1}')
        assert srv.seen("POST") == 1
        assert srv.accepted == 1
        assert srv.requests[-1].body == b'{"x": 1}'
        # the client still works afterwards, on a new connection
        assert await get(c) == b"fresh"


async def test_reused_connection_that_answered_in_part_is_not_retried() -> None:
    async def script(p: Peer) -> None:
        await p.request()
        await p.send(response(b"first"))
        await p.request()
        await p.send(b"HTTP/1.1 200 OK\r\n")  # a byte of the answer came: not stale

    async with RawServer(script) as srv, client(srv.url) as c:
        assert await get(c) == b"first"
        with pytest.raises(TransportError):
            await c.request("GET", "/")
        assert srv.accepted == 1
        assert srv.seen("GET") == 2


async def test_idle_connection_closed_by_the_server_is_not_used() -> None:
    async def script(p: Peer) -> None:
        await p.request()
        await p.send(response(b"ok"))  # keep-alive by the headers, then closed anyway

    async with RawServer(script) as srv, client(srv.url) as c:
        assert await get(c) == b"ok"
        await eventually(lambda: c.open_connections == 0)
        assert await get(c) == b"ok"
        assert srv.accepted == 2


# --- 7. timeouts ----------------------------------------------------------------------------


async def test_first_byte_timeout() -> None:
    async def script(p: Peer) -> None:
        await p.request()
        await p.until_closed()

    async with RawServer(script) as srv, \
            client(srv.url, timeouts=Timeouts(first_byte=0.3, idle=5)) as c:
        t0 = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            await c.request("GET", "/")
        assert 0.25 <= time.monotonic() - t0 < 1.5
        await eventually(lambda: 0 in srv.closed_by_client)
        assert c.open_connections == 0


@READERS
async def test_idle_timeout_in_the_body(how: str) -> None:
    async def script(p: Peer) -> None:
        await p.request()
        await p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await p.until_closed()

    async with RawServer(script) as srv, \
            client(srv.url, timeouts=Timeouts(first_byte=5, idle=0.3)) as c:
        resp = await c.request("GET", "/")
        t0 = time.monotonic()
        chunks: list[bytes] = []
        with pytest.raises(UpstreamTimeout):
            if how == "read":
                await resp.read()
            else:
                async for chunk in resp.iter_chunks():
                    chunks.append(chunk)
        assert time.monotonic() - t0 < 1.5
        if how == "iter_chunks":
            assert b"".join(chunks) == b"abc"
        resp.close()
        await eventually(lambda: 0 in srv.closed_by_client)


@READERS
async def test_total_timeout_on_a_trickle(how: str) -> None:
    async def script(p: Peer) -> None:
        await p.request()
        await p.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while True:  # forever, until the client goes away
            await p.send(b"1\r\nx\r\n")
            await asyncio.sleep(0.03)

    async with RawServer(script) as srv, \
            client(srv.url, timeouts=Timeouts(first_byte=5, idle=0.3, total=0.5)) as c:
        t0 = time.monotonic()
        resp = await c.request("GET", "/")
        n = 0
        with pytest.raises(UpstreamTimeout):
            if how == "read":
                await resp.read()
            else:
                async for chunk in resp.iter_chunks():
                    n += len(chunk)
        assert 0.45 <= time.monotonic() - t0 < 2.0
        if how == "iter_chunks":
            assert n >= 3  # the trickle did flow: the idle timeout was not the cause
        resp.close()
        await eventually(lambda: srv.live == 0)


async def test_timeout_while_the_upstream_does_not_read_the_request_body() -> None:
    # The request body is far larger than the socket buffers and the server never reads
    # it: the first-byte timeout must still end the exchange (and free the connection).
    body = b"x" * (48 << 20)

    go = asyncio.Event()

    async def script(p: Peer) -> None:
        await p.reader.readuntil(b"\r\n\r\n")
        await go.wait()  # reads nothing more until the client gave up
        await p.until_closed()

    async with RawServer(script) as srv, \
            client(srv.url, timeouts=Timeouts(first_byte=0.3, idle=5)) as c:
        t0 = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            await asyncio.wait_for(c.request("POST", "/", body=body), 5)
        assert time.monotonic() - t0 < 2.0
        await eventually(lambda: c.open_connections == 0)
        go.set()
        # the connection is gone, not left to finish a 48 MB upload nobody waits for
        await eventually(lambda: srv.closed_by_client == [0])


# --- large bodies both ways -----------------------------------------------------------------


async def test_large_request_body_goes_out_intact() -> None:
    body = random.Random(5).randbytes(6 << 20)

    async def script(p: Peer) -> None:
        await p.request()
        await p.send(response(hashlib.sha256(srv.requests[-1].body).hexdigest().encode()))
        await p.until_closed()

    async with RawServer(script) as srv, client(srv.url) as c:
        got = await get(c, "/", "POST", body=body)
        assert got == hashlib.sha256(body).hexdigest().encode()
        assert srv.requests[0].header("content-length") == [str(len(body))]


async def test_read_back_pressure() -> None:
    block = random.Random(7).randbytes(1 << 20)
    blocks = 48
    size = blocks << 20
    expected = hashlib.sha256()
    for i in range(blocks):
        expected.update(block[i:] + block[:i])

    @dataclass
    class State:
        sent: int = 0
        in_drain: bool = False
        peers: list[Peer] = field(default_factory=list)

    st = State()

    async def script(p: Peer) -> None:
        await p.request()
        st.peers.append(p)
        p.writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for i in range(blocks):
            p.writer.write(block[i:] + block[:i])
            st.sent += len(block)
            st.in_drain = True
            await p.writer.drain()
            st.in_drain = False
        await p.until_closed()

    bound = 3 * h1.HIGH_WATER
    # idle=0.3: a socket paused because the consumer is slow is not upstream silence
    async with RawServer(script) as srv, \
            client(srv.url, timeouts=Timeouts(first_byte=5, idle=0.3)) as c:
        resp = await c.request("GET", "/")
        await asyncio.sleep(0.5)
        conn = resp._conn
        assert conn.reading_paused
        assert conn._buffered <= bound
        sent = st.sent
        await asyncio.sleep(0.2)
        assert st.sent == sent < size  # the server is stuck...
        assert st.in_drain  # ...waiting for its writes to drain
        assert st.peers[0].writer.transport.get_write_buffer_size() > 0
        assert conn._buffered <= bound

        got = hashlib.sha256()
        n = 0
        async for chunk in resp.iter_chunks():
            assert len(chunk) <= bound
            got.update(chunk)
            n += len(chunk)
        assert n == size
        assert got.hexdigest() == expected.hexdigest()
        resp.release()
        assert srv.accepted == 1


# --- 9. header injection --------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {"X-A": "a\r\nX-Injected: 1"},
    {"X-A": "a\nb"},
    {"X-A": "a\rb"},
    {"X-A": "a\0b"},
    {"X-B\r\nX-Injected": "v"},
    {"X-B\n": "v"},
    {"X\0": "v"},
    {"Host": "h\r\n\r\nGET /smuggled HTTP/1.1"},
], ids=["crlf-value", "lf-value", "cr-value", "nul-value", "crlf-name", "lf-name",
        "nul-name", "host"])
async def test_header_injection_is_refused(headers: dict[str, str]) -> None:
    async with RawServer(answering(response(b"ok"))) as srv, client(srv.url) as c:
        with pytest.raises(InvalidRequest):
            await c.request("POST", "/", body=b"{}", headers=headers)
        assert srv.accepted == 0
        assert c.open_connections == 0
        assert await get(c) == b"ok"  # the client is fine afterwards
        assert srv.requests[0].header("x-injected") == []
        assert len(srv.requests) == 1


async def test_nul_in_an_encoded_path_is_refused() -> None:
    async with RawServer(answering(response(b"ok"))) as srv, client(srv.url) as c:
        with pytest.raises(InvalidRequest):
            await c.request("GET", "/a\0b", encoded=True)
        assert srv.accepted == 0


# --- 10. pool limit -------------------------------------------------------------------------


@pytest.mark.parametrize("close", [False, True], ids=["keep-alive", "connection-close"])
async def test_pool_limit(close: bool) -> None:
    extra = ["Connection: close"] if close else []

    async def script(p: Peer) -> None:
        while (req := await p.request()) is not None:
            await asyncio.sleep(0.05)
            await p.send(response(req.line.split(b" ")[1], *extra))
            if close:
                return

    async with RawServer(script) as srv, client(srv.url, limit=2) as c:
        got = await asyncio.gather(*(get(c, f"/{i}") for i in range(5)))
        assert got == [f"/{i}".encode() for i in range(5)]
        assert srv.max_live == 2  # both slots used, never more
        assert srv.accepted == (5 if close else 2)
        assert len(srv.requests) == 5


async def test_waiting_for_a_free_connection_times_out() -> None:
    async with RawServer(answering(response(b"0123456789"))) as srv, \
            client(srv.url, limit=1, timeouts=Timeouts(connect=0.2)) as c:
        held = await c.request("GET", "/held")  # the only connection, body not read
        t0 = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            await c.request("GET", "/waits")
        assert time.monotonic() - t0 < 1.5
        assert await held.read() == b"0123456789"
        held.release()
        # the slot the timed-out waiter had queued for is not lost
        assert await asyncio.wait_for(get(c, "/next"), 2) == b"0123456789"
        assert srv.accepted == 1
        assert [r.line for r in srv.requests] == [b"GET /held HTTP/1.1", b"GET /next HTTP/1.1"]


async def test_cancelled_request_closes_its_connection() -> None:
    async def script(p: Peer) -> None:
        if await p.request() is not None and p.index == 0:
            await p.until_closed()  # never answers the first connection
            return
        await p.send(response(b"ok"))
        await answering(response(b"ok"))(p)

    async with RawServer(script) as srv, client(srv.url, limit=1) as c:
        task = asyncio.create_task(c.request("GET", "/"))
        await eventually(lambda: len(srv.requests) == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await eventually(lambda: srv.closed_by_client == [0])
        assert c.open_connections == 0
        assert await get(c) == b"ok"  # and the slot came back
        assert srv.accepted == 2


# --- 11. response headers -------------------------------------------------------------------


async def test_response_headers() -> None:
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSet-Cookie: a=1\r\n"
              b"X-Mixed-Case:   padded value  \r\nset-cookie: b=2\r\nX-Utf8: caf\xc3\xa9\r\n"
              b"Content-Length: 2\r\n\r\n{}")
    async with RawServer(answering(answer)) as srv, client(srv.url) as c:
        resp = await c.request("GET", "/")
        h = resp.headers
        assert h["content-type"] == h["CONTENT-TYPE"] == "application/json"
        assert h.getall("Set-Cookie") == ["a=1", "b=2"]
        assert h["x-mixed-case"] == "padded value"
        assert h["x-utf8"] == "café"
        assert "x-absent" not in h
        assert resp.headers is h  # built once
        assert await resp.read() == b"{}"
        resp.release()


# --- 12. Unix socket ------------------------------------------------------------------------


async def test_unix_socket() -> None:
    d = tempfile.mkdtemp(prefix="h1-", dir="/tmp")  # short: AF_UNIX paths are limited
    path = f"{d}/up.sock"
    try:
        async with RawServer(answering(response(b"over unix")), unix=path) as srv, \
                client("http://localhost", unix_socket=path) as c:
            assert await get(c, "/v1/models") == b"over unix"
            assert await get(c, "/v1/models") == b"over unix"
            assert srv.accepted == 1
            assert srv.requests[0].line == b"GET /v1/models HTTP/1.1"
            assert srv.requests[0].header("host") == ["localhost"]
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --- 13. HEAD -------------------------------------------------------------------------------


async def test_head_answer_has_no_body() -> None:
    answers = (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nX-H: 1\r\n\r\n",
               b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    async with RawServer(answering(*answers)) as srv, client(srv.url) as c:
        for _ in answers:
            resp = await asyncio.wait_for(c.request("HEAD", "/"), 2)
            assert resp.status == 200
            assert await asyncio.wait_for(resp.read(), 2) == b""
            assert [x async for x in resp.iter_chunks()] == []
            resp.release()
        assert [r.line for r in srv.requests] == [b"HEAD / HTTP/1.1"] * 2
        assert all(r.header("content-length") == [] for r in srv.requests)
        # the parser cannot be told the answer has no body, so its connection is not reused
        assert srv.accepted == 2


# --- 14. close and release ------------------------------------------------------------------


async def test_close_mid_body_closes_the_connection() -> None:
    async def script(p: Peer) -> None:
        await p.request()
        await p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        await p.until_closed()

    async with RawServer(script) as srv, client(srv.url) as c:
        resp = await c.request("GET", "/")
        it = resp.iter_chunks()
        assert isinstance(it, AsyncGenerator)
        assert await anext(it) == b"0123456789"
        resp.close()
        await eventually(lambda: srv.closed_by_client == [0])
        await eventually(lambda: c.open_connections == 0)
        await it.aclose()


async def release_after_first_chunk(c: HttpClient, expected: bytes) -> None:
    """Read one chunk of a GET's body, then release the response (as a stream consumer
    that stopped at its terminal event does) and close the iterator."""
    resp = await c.request("GET", "/")
    it = resp.iter_chunks()
    assert isinstance(it, AsyncGenerator)
    assert await anext(it) == expected
    resp.release()
    await it.aclose()


async def test_release_before_the_end_drains_the_rest_and_reuses() -> None:
    # A stream whose consumer stopped at its terminal event: the upstream's last bytes
    # are read and dropped, and the connection carries the next request.
    async def script(p: Peer) -> None:
        await p.request()
        await p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n0123456789")
        await asyncio.sleep(0.05)
        await p.send(b"abcdefghij", b"ABCDEFGHIJ", pause=0.02)
        while await p.request() is not None:
            await p.send(response(b"second"))

    async with RawServer(script) as srv, client(srv.url) as c:
        await release_after_first_chunk(c, b"0123456789")
        await eventually(lambda: bool(c._pools) and next(iter(c._pools.values()))._idle != [])
        assert await get(c) == b"second"
        assert srv.accepted == 1


async def test_release_before_the_end_closes_when_the_rest_does_not_come(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h1.connection, "DRAIN_SECONDS", 0.2)  # where it is read

    async def script(p: Peer) -> None:
        await p.request()
        await p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        await p.until_closed()

    async with RawServer(script) as srv, client(srv.url) as c:
        await release_after_first_chunk(c, b"0123456789")
        resp2 = await c.request("GET", "/")  # the first one is still draining
        assert srv.accepted == 2
        await eventually(lambda: srv.closed_by_client == [0])  # given up after 0.2 s
        resp2.close()
        await eventually(lambda: sorted(srv.closed_by_client) == [0, 1])


async def test_release_before_the_end_closes_when_too_much_is_left() -> None:
    big = h1.DRAIN_BYTES * 4

    async def script(p: Peer) -> None:
        await p.request()
        await p.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n0123456789" % big)
        await asyncio.sleep(0.05)
        with contextlib.suppress(ConnectionError):
            await p.send(b"x" * (big - 10))
        await p.until_closed()

    async with RawServer(script) as srv, client(srv.url) as c:
        await release_after_first_chunk(c, b"0123456789")
        await eventually(lambda: srv.closed_by_client == [0])
        assert c.open_connections == 0


# --- 15. request line and headers -----------------------------------------------------------


async def test_request_target_and_headers() -> None:
    async with RawServer(answering(response(b"ok"))) as srv, client(srv.url + "/base/") as c:
        await get(c, "/a b/é?q=x y")
        await get(c, "/v1/models/foo%3Abar/x%2Fy?k=%20", encoded=True)
        await get(c, "/p", "POST", body=b"abc", headers={"X-Custom": "v", "Accept": "*/*"})
        await get(c, "/p", "POST")
        await get(c, "/h", headers={"Host": "example.test"})
        await get(c, "/h", headers={"host": "other.test:8443"})
        await get(c, "/n", "PUT", body=b"12345", headers={"Content-Length": "5"})
        r = srv.requests
        assert r[0].line == b"GET /base/a%20b/%C3%A9?q=x+y HTTP/1.1"
        assert r[1].line == b"GET /base/v1/models/foo%3Abar/x%2Fy?k=%20 HTTP/1.1"
        assert r[0].header("host") == [f"127.0.0.1:{srv.port}"]
        assert r[0].header("content-length") == []  # a GET without body has none
        assert r[2].header("content-length") == ["3"] and r[2].body == b"abc"
        assert r[2].header("x-custom") == ["v"] and r[2].header("accept") == ["*/*"]
        assert r[3].header("content-length") == ["0"]  # POST without a body: an empty one
        assert r[4].header("host") == ["example.test"]
        assert r[5].header("host") == ["other.test:8443"]
        assert r[6].header("content-length") == ["5"] and r[6].body == b"12345"
        assert srv.accepted == 1


# --- 16. unsolicited bytes ------------------------------------------------------------------


async def test_unsolicited_bytes_on_an_idle_connection() -> None:
    async def script(p: Peer) -> None:
        if p.index == 0:
            await p.request()
            await p.send(response(b"first"))
            await asyncio.sleep(0.05)
            await p.send(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
            await p.until_closed()
            return
        await answering(response(b"second"))(p)

    async with RawServer(script) as srv, client(srv.url) as c:
        assert await get(c) == b"first"
        assert c.open_connections == 1
        await eventually(lambda: srv.closed_by_client == [0])
        await eventually(lambda: c.open_connections == 0)
        assert await get(c) == b"second"
        assert srv.accepted == 2


# --- 17. TLS --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    return ctx


async def test_tls(ca: trustme.CA) -> None:
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with RawServer(answering(response(b"secret")), tls=server_tls(ca)) as srv:
        base = f"https://localhost:{srv.port}"
        async with client(base, ssl_context=trusting) as c:
            assert await get(c) == b"secret"
            assert await get(c) == b"secret"
            assert srv.accepted == 1
            assert srv.requests[0].header("host") == [f"localhost:{srv.port}"]
        await eventually(lambda: srv.closed_by_client == [0])
        # (a TLS close takes a few loop turns: right after aclose it may still count)
        await eventually(lambda: c.open_connections == 0)


@pytest.mark.parametrize("trust", ["system", "other-ca"])
async def test_tls_untrusted_certificate(ca: trustme.CA, trust: str) -> None:
    ctx: ssl.SSLContext | None = None
    if trust == "other-ca":
        ctx = ssl.create_default_context()
        trustme.CA().configure_trust(ctx)
    async with RawServer(answering(response(b"secret")), tls=server_tls(ca)) as srv, \
            client(f"https://localhost:{srv.port}", ssl_context=ctx) as c:
        with pytest.raises(TransportError):
            await c.request("GET", "/")
        assert srv.requests == []
        assert c.open_connections == 0


# --- 18. aclose -----------------------------------------------------------------------------


async def test_aclose_closes_idle_connections() -> None:
    async with RawServer(answering(response(b"ok"))) as srv:
        c = HttpClient(srv.url, limit=4)
        await asyncio.gather(*(get(c) for _ in range(3)))
        assert c.open_connections == srv.accepted == 3
        await c.aclose()
        assert c.open_connections == 0
        await eventually(lambda: sorted(srv.closed_by_client) == [0, 1, 2])
        # a request after aclose opens a new pool
        assert await get(c) == b"ok"
        await c.aclose()
        assert c.open_connections == 0


# --- 19. origins ----------------------------------------------------------------------------


async def test_absolute_url_to_another_origin() -> None:
    async with RawServer(answering(response(b"A"))) as a, \
            RawServer(answering(response(b"B"))) as b, client(a.url + "/api") as c:
        assert await get(c, "/x") == b"A"
        assert await get(c, f"{b.url}/y?z=1") == b"B"
        assert await get(c, f"{b.url}/y?z=1") == b"B"
        assert await get(c, "/x") == b"A"
        assert [r.line for r in a.requests] == [b"GET /api/x HTTP/1.1"] * 2
        assert [r.line for r in b.requests] == [b"GET /y?z=1 HTTP/1.1"] * 2
        assert b.requests[0].header("host") == [f"127.0.0.1:{b.port}"]
        assert a.accepted == b.accepted == 1
        assert c.open_connections == 2


async def test_unreachable_upstream() -> None:
    async with RawServer(answering(response())) as srv:
        port = srv.port
    async with client(f"http://127.0.0.1:{port}") as c:
        with pytest.raises(TransportError):
            await c.request("GET", "/")
        assert c.open_connections == 0


# --- limits added after review --------------------------------------------------------------


async def test_compressed_body_inflating_past_the_limit_is_refused() -> None:
    # ~64 KiB of gzip that inflates to 64 MiB: refused before it is all in memory.
    bomb = gzip.compress(b"\0" * (2 * h1.MAX_INFLATED))
    assert len(bomb) < 2 * h1.HIGH_WATER
    async with RawServer(answering(response(bomb, "Content-Encoding: gzip"))) as srv, \
            client(srv.url) as c:
        resp = await c.request("GET", "/")
        with pytest.raises(TransportError, match="inflates past"):
            await resp.read()
        resp.release()
        await eventually(lambda: c.open_connections == 0)


async def test_compressed_body_read_as_it_comes_may_inflate_beyond_the_limit() -> None:
    # The limit is on what is buffered unread, not on the body: a consumer that keeps
    # up gets a body larger than MAX_INFLATED, chunk by chunk.
    size = h1.MAX_INFLATED + h1.HIGH_WATER
    plain = bytes(range(256)) * (size // 256)
    packed = gzip.compress(plain)
    parts = [packed[i:i + 4096] for i in range(0, len(packed), 4096)]

    async def script(p: Peer) -> None:
        await p.request()
        await p.send(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        for x in parts:
            await p.send(b"%x\r\n%s\r\n" % (len(x), x))
        await p.send(b"0\r\n\r\n")
        await p.until_closed()

    async with RawServer(script) as srv, client(srv.url) as c:
        resp = await c.request("GET", "/")
        h = hashlib.sha256()
        n = 0
        async for chunk in resp.iter_chunks():
            h.update(chunk)
            n += len(chunk)
        resp.release()
        assert n == len(plain) and h.digest() == hashlib.sha256(plain).digest()


async def test_a_flood_of_interim_heads_is_not_kept() -> None:
    interim = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"

    async def script(p: Peer) -> None:
        await p.request()
        for _ in range(200):
            await p.send(interim * 50)
        await p.send(response(b"final"))
        await p.until_closed()

    async with RawServer(script) as srv, client(srv.url) as c:
        resp = await c.request("GET", "/")
        assert resp.status == 200
        assert await resp.read() == b"final"
        assert len(resp._conn.head) < 200  # the final head only
        resp.release()


async def test_space_in_an_encoded_path_is_refused() -> None:
    async with RawServer(answering(response(b"ok"))) as srv, client(srv.url) as c:
        with pytest.raises(InvalidRequest):
            await c.request("GET", "/a b", encoded=True)
        assert srv.accepted == 0
        assert await get(c, "/a b") == b"ok"  # not encoded: percent-encoded for us
        assert srv.requests[0].line == b"GET /a%20b HTTP/1.1"


async def test_a_host_name_is_resolved_once_and_its_addresses_tried_in_turn() -> None:
    # ``localhost`` usually resolves to ::1 and 127.0.0.1; the server listens on IPv4
    # only, so an IPv6 attempt (where there is one) fails and the next address is used.
    async with RawServer(answering(response(b"ok", "Connection: close"))) as srv, \
            client(f"http://localhost:{srv.port}") as c:
        for _ in range(3):
            assert await get(c) == b"ok"
        assert srv.accepted == 3
        pool = next(iter(c._pools.values()))
        assert pool._addrs is not None  # cached for the next connections
        assert srv.requests[0].header("host") == [f"localhost:{srv.port}"]


async def test_an_unknown_host_name_is_a_transport_error() -> None:
    async with client("http://no-such-host.invalid") as c:
        with pytest.raises(TransportError, match="cannot reach upstream"):
            await c.request("GET", "/")

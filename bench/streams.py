"""Streaming clients: one raw-socket stream at a time with a timestamp per network read
(time to first token, and whether chunks keep the upstream's pace), and a herd of
concurrent streams (errors, while the caller samples the target's memory).

Token frames are the SSE frames carrying ``"tok`` (the paced upstream's words survive
every target's re-encoding); role, finish and usage frames are not counted.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from procs import BENCH_KEY

_TOKEN = b'"tok'


def request_bytes(path: str, body: dict[str, Any]) -> bytes:
    raw = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {BENCH_KEY}\r\nContent-Length: {len(raw)}\r\n\r\n"
            ).encode() + raw


class _Body:
    """Incremental HTTP/1.1 response body: chunked or Content-Length."""

    def __init__(self, head: bytes) -> None:
        lower = head.lower()
        self.chunked = b"transfer-encoding: chunked" in lower
        self.remaining = -1
        for line in lower.split(b"\r\n"):
            if line.startswith(b"content-length:"):
                self.remaining = int(line.split(b":", 1)[1])
        self.raw = b""
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """Payload bytes carried by ``data`` (chunk framing removed)."""
        if not self.chunked:
            if self.remaining >= 0:
                self.remaining -= len(data)
                self.done = self.remaining <= 0
            return data
        self.raw += data
        out = []
        while True:
            nl = self.raw.find(b"\r\n")
            if nl < 0:
                break
            size = int(self.raw[:nl].split(b";")[0], 16)
            if size == 0:
                if len(self.raw) >= nl + 4:  # "0" CRLF CRLF: no trailers are sent here
                    self.done = True
                    self.raw = b""
                break
            if len(self.raw) < nl + 2 + size + 2:
                break
            out.append(self.raw[nl + 2:nl + 2 + size])
            self.raw = self.raw[nl + 2 + size + 2:]
        return b"".join(out)


@dataclass
class StreamTrace:
    ttft_ms: float = 0.0  # request sent → first token frame complete at the client
    token_times: list[float] = field(default_factory=list)  # seconds, per token frame
    coalesced: int = 0  # token frames that arrived in the same read as an earlier one
    status: int = 0


class RawStreamClient:
    """Sequential streams on one keep-alive connection (reconnects if the server closes)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def stream(self, req: bytes) -> StreamTrace:
        if self.sock is None:
            self.sock = self._connect()
        s = self.sock
        trace = StreamTrace()
        t0 = time.perf_counter()
        s.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = s.recv(65536)
            if not data:
                raise ConnectionError("closed before the response head")
            buf += data
        head, rest = buf.split(b"\r\n\r\n", 1)
        trace.status = int(head.split(b" ", 2)[1])
        body = _Body(head)
        sse = b""
        pending = rest
        now = time.perf_counter()
        while True:
            sse += body.feed(pending)
            frames = sse.split(b"\n\n")
            sse = frames.pop()
            tokens = sum(1 for f in frames if _TOKEN in f)
            if tokens:
                if not trace.token_times:
                    trace.ttft_ms = (now - t0) * 1000
                trace.coalesced += tokens - 1
                trace.token_times.extend([now] * tokens)
            if body.done:
                break
            pending = s.recv(65536)
            now = time.perf_counter()
            if not pending:
                if body.chunked or body.remaining > 0:
                    raise ConnectionError("closed mid-stream")
                break
        if b"connection: close" in head.lower():
            self.close()
        return trace


def pacing(traces: list[StreamTrace], delay_ms: float) -> dict[str, float]:
    """Time to first token, and the gaps between token frames at the client against the
    upstream's pace: ``on_pace_pct`` is the share of gaps within ±50 % of it."""
    gaps = [(b - a) * 1000 for t in traces for a, b in zip(t.token_times, t.token_times[1:],
                                                            strict=False)]
    ttft = sorted(t.ttft_ms for t in traces)
    on_pace = sum(1 for g in gaps if 0.5 * delay_ms <= g <= 1.5 * delay_ms)
    return {
        "streams": len(traces),
        "ttft_p50_ms": statistics.median(ttft) if ttft else float("nan"),
        "ttft_p90_ms": ttft[int(0.9 * (len(ttft) - 1))] if ttft else float("nan"),
        "gap_p50_ms": statistics.median(gaps) if gaps else float("nan"),
        "gap_min_ms": min(gaps) if gaps else float("nan"),
        "gap_max_ms": max(gaps) if gaps else float("nan"),
        "on_pace_pct": 100 * on_pace / len(gaps) if gaps else 0.0,
        "coalesced": sum(t.coalesced for t in traces),
        "tokens": sum(len(t.token_times) for t in traces),
    }


def sequential_streams(port: int, path: str, body: dict[str, Any], n: int) -> list[StreamTrace]:
    client = RawStreamClient(port)
    req = request_bytes(path, {**body, "stream": True})
    try:
        return [client.stream(req) for _ in range(n)]
    finally:
        client.close()


def sequential_requests(port: int, path: str, body: dict[str, Any], n: int) -> None:
    """``n`` non-stream requests one after the other (a warm-up); each must answer 200."""
    client = RawStreamClient(port)
    req = request_bytes(path, body)
    try:
        for _ in range(n):
            status = client.stream(req).status
            if status != 200:
                raise RuntimeError(f"warm-up request answered {status}")
    finally:
        client.close()


# --- a herd of concurrent streams ----------------------------------------------------------


@dataclass
class HerdResult:
    streams: int
    ok: int
    errors: dict[str, int]
    wall_s: float
    ttft_p50_ms: float
    ttft_max_ms: float

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


async def _herd(port: int, path: str, body: dict[str, Any], n: int, tokens: int,
                timeout_s: float) -> HerdResult:
    import aiohttp

    raw = json.dumps({**body, "stream": True}).encode()
    headers = {"content-type": "application/json", "authorization": f"Bearer {BENCH_KEY}"}
    errors: dict[str, int] = {}
    ttfts: list[float] = []
    url = f"http://127.0.0.1:{port}{path}"
    conn = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def one(session: aiohttp.ClientSession) -> bool:
        t0 = time.perf_counter()
        try:
            async with session.post(url, data=raw, headers=headers) as resp:
                if resp.status != 200:
                    errors[f"http_{resp.status}"] = errors.get(f"http_{resp.status}", 0) + 1
                    await resp.read()
                    return False
                parts = []
                async for chunk in resp.content.iter_any():
                    if not parts:
                        ttfts.append((time.perf_counter() - t0) * 1000)
                    parts.append(chunk)
                data = b"".join(parts)
                if data.count(_TOKEN) != tokens or b"[DONE]" not in data[-64:]:
                    errors["incomplete"] = errors.get("incomplete", 0) + 1
                    return False
                return True
        except Exception as e:
            key = type(e).__name__
            errors[key] = errors.get(key, 0) + 1
            return False

    t0 = time.perf_counter()
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        results = await asyncio.gather(*(one(session) for _ in range(n)))
    wall = time.perf_counter() - t0
    ttfts.sort()
    return HerdResult(streams=n, ok=sum(results), errors=errors, wall_s=wall,
                      ttft_p50_ms=statistics.median(ttfts) if ttfts else float("nan"),
                      ttft_max_ms=ttfts[-1] if ttfts else float("nan"))


def herd(port: int, path: str, body: dict[str, Any], n: int, tokens: int,
         timeout_s: float) -> HerdResult:
    """``n`` streams opened at once; each must bring all ``tokens`` and ``[DONE]``."""
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_herd(port, path, body, n, tokens, timeout_s))

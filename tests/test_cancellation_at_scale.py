"""1,000 clients that leave mid-stream: each one cancels its upstream request at once, and
nothing stays behind — no task, no socket, no request counted in flight, no budget
reservation.

The gateway runs in this process (uvicorn on its own event loop in a thread, real sockets)
so the test can count that loop's tasks and read the limits store; the upstream is the
chaos fake with a stream that sends its first deltas and then never ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dragoman.config import build_gateway, parse_config
from dragoman.server import Gateway
from dragoman.server.runner import serve
from tests.fakes.chaos import ChaosUpstream, Stall
from tests.gateway_proc import free_port, wait_http

DISCONNECTS = 1000
PARALLEL = 25
# Three deltas at once, then an open stream that only a disconnect ends. Not a slow
# ticking stream: every tick of every stream still open is work for the fake, the gateway
# and the client alike, so on a loaded machine the streams that wait longer tick more and
# starve the rest (a stream then missed its three frames within 10 s).
SLOW = Stall(after_chunks=3)
PRICE = {"input_cost_per_mtok": 2.0, "output_cost_per_mtok": 8.0}


class ThreadedGateway:
    """``dragoman.serve`` on a private event loop in a background thread."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="gateway")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._task = self.loop.create_task(serve(self.gw.app(), host="127.0.0.1",
                                                 port=self.port))
        with contextlib.suppress(asyncio.CancelledError):
            self.loop.run_until_complete(self._task)

    def start(self) -> None:
        self._thread.start()
        wait_http(f"http://127.0.0.1:{self.port}/healthz")

    def stop(self) -> None:
        if self._task is not None:
            self.loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(20)

    def call(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def task_count(self) -> int:
        async def count() -> int:
            return len(asyncio.all_tasks())
        return int(self.call(count()))


def sockets() -> int:
    """Sockets this process holds open (gateway, fake upstream and clients alike)."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


@pytest.fixture(scope="module")
def fake() -> Iterator[ChaosUpstream]:
    with ChaosUpstream(fallback=SLOW) as f:
        yield f


@pytest.fixture(scope="module")
def gateway(fake: ChaosUpstream) -> Iterator[ThreadedGateway]:
    cfg = parse_config({
        "models": [
            # a Chat client on an OpenAI upstream: the same-dialect fast path
            {"name": "fast", "provider": "openai", "model": "up-fast",
             "base_url": fake.url + "/v1", "api_key": "k", "capabilities": PRICE},
            # an Anthropic client on the same upstream: translated
            {"name": "translated", "provider": "openai", "model": "up-translated",
             "base_url": fake.url + "/v1", "api_key": "k", "capabilities": PRICE},
        ],
        "sessions": {"backend": "memory"},
        "limits": {"budget": {"usd": 1000, "window": "1d"}, "tenant": {"tpm": 10_000_000}},
    })
    g = ThreadedGateway(build_gateway(cfg))
    g.start()
    yield g
    g.stop()


def _request(i: int, port: int) -> bytes:
    if i % 2:
        path, body = "/v1/messages", {"model": "translated", "max_tokens": 1000,
                                      "stream": True,
                                      "messages": [{"role": "user", "content": f"hi {i}"}]}
        extra = "anthropic-version: 2023-06-01\r\nx-api-key: any\r\n"
    else:
        path, body = "/v1/chat/completions", {"model": "fast", "max_tokens": 1000,
                                              "stream": True, "messages": [
                                                  {"role": "user", "content": f"hi {i}"}]}
        extra = "authorization: Bearer any\r\n"
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(data)}\r\n{extra}\r\n"
            ).encode() + data


async def _leave_mid_stream(i: int, port: int) -> None:
    """Read until the stream is under way (three frames in), then hang up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_request(i, port))
        seen = b""
        async with asyncio.timeout(10):
            while seen.count(b"data:") < 3:
                chunk = await reader.read(65536)
                assert chunk, f"stream {i} ended early: {seen[:300]!r}"
                seen += chunk
        assert seen.startswith(b"HTTP/1.1 200"), seen[:200]
    finally:
        writer.close()
        await writer.wait_closed()


async def _leave_many(n: int, port: int, start: int = 0) -> None:
    sem = asyncio.Semaphore(PARALLEL)

    async def one(i: int) -> None:
        async with sem:
            await _leave_mid_stream(i, port)

    await asyncio.gather(*(one(start + i) for i in range(n)))


def _settled(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert check()


def test_a_thousand_disconnects_leave_nothing_behind(fake: ChaosUpstream,
                                                    gateway: ThreadedGateway) -> None:
    gw = gateway.gw
    assert gw.limiter is not None
    budget_key = ("t:default:usd", 86400.0)

    # Warm up (pools, lazily created sessions), then take the baseline.
    asyncio.run(_leave_many(4, gateway.port))
    fake.wait_for(lambda: fake.streams_cancelled == 4 and fake.open_connections == 0,
                  timeout=10, what="warm-up streams cancelled")
    _settled(lambda: all(d.health.inflight == 0 for d in gw.models.deployments()))
    base_tasks = gateway.task_count()
    base_sockets = sockets()
    base_spent = gateway.call(gw.limiter.store.used(*budget_key))

    asyncio.run(_leave_many(DISCONNECTS, gateway.port, start=100))

    # The upstream saw every stream end early (its connection closed), none finish.
    fake.wait_for(lambda: fake.streams_cancelled == DISCONNECTS + 4, timeout=30,
                  what=f"{DISCONNECTS} upstream streams cancelled")
    assert fake.streams_started == DISCONNECTS + 4
    assert fake.streams_completed == 0
    fake.wait_for(lambda: fake.open_connections == 0, timeout=10, what="upstream closed")

    # Nothing left in the gateway: tasks, sockets, requests in flight.
    _settled(lambda: gateway.task_count() == base_tasks)
    _settled(lambda: sockets() <= base_sockets)
    assert all(d.health.inflight == 0 for d in gw.models.deployments())

    # Every budget reservation was settled: what remains charged is the input share of
    # each request (usage never arrived), not the reserved output.
    spent = gateway.call(gw.limiter.store.used(*budget_key)) - base_spent
    reserved_each = (8.0 * 1000) / 1_000_000  # the max_tokens part a reservation holds
    assert spent > 0
    assert spent < DISCONNECTS * reserved_each / 100, spent

    # And the gateway still answers.
    asyncio.run(_leave_many(2, gateway.port, start=5000))

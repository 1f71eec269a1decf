"""The coalescing body writer: order kept, bursts coalesced, backpressure bounded, the body
ended exactly once. (Over real sockets it is exercised by every streaming test.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dragoman.server.writer import BodyWriter


class SlowSink:
    """An ASGI ``send`` that takes a while per call, like a real socket write."""

    def __init__(self, delay: float = 0.0) -> None:
        self.messages: list[dict[str, Any]] = []
        self.delay = delay

    async def __call__(self, msg: dict[str, Any]) -> None:
        await asyncio.sleep(self.delay)
        self.messages.append(msg)

    @property
    def body(self) -> bytes:
        return b"".join(m["body"] for m in self.messages)


async def test_burst_is_coalesced_and_ordered() -> None:
    sink = SlowSink()
    w = BodyWriter(sink)
    for i in range(100):  # written without suspending, like events of one network read
        await w.write(b"%d," % i)
    await w.close()
    assert sink.body == b"".join(b"%d," % i for i in range(100))
    assert len(sink.messages) == 2  # one coalesced send, then the end of the body
    assert sink.messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_idle_writes_leave_one_by_one() -> None:
    sink = SlowSink()
    w = BodyWriter(sink)
    for i in range(3):
        await w.write(b"x%d" % i)
        await asyncio.sleep(0.01)  # the next event is not there yet: the frame went out
        assert sink.body.endswith(b"x%d" % i)
    await w.close()
    assert [m["body"] for m in sink.messages] == [b"x0", b"x1", b"x2", b""]


async def test_backpressure_bounds_the_buffer() -> None:
    sink = SlowSink(delay=0.01)
    w = BodyWriter(sink, high_water=1000)
    for _ in range(20):
        await w.write(b"y" * 600)
        assert w._size <= 1200  # never more than one write past the high-water mark
    await w.close()
    assert sink.body == b"y" * 12000


async def test_send_failure_reaches_the_producer_and_abort_stops() -> None:
    async def broken(msg: dict[str, Any]) -> None:
        raise ConnectionResetError("client gone")

    w = BodyWriter(broken)
    await w.write(b"a")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    with pytest.raises(ConnectionResetError):
        await w.write(b"b")
    sink = SlowSink(delay=1.0)
    w2 = BodyWriter(sink)
    await w2.write(b"never finished")
    w2.abort()
    await asyncio.sleep(0.01)
    assert sink.messages == []

"""Coalesce streamed body chunks into as few ASGI sends as the client's pace allows.

One upstream network read often carries many SSE events; the provider yields them without
suspending, so the pump renders them back to back. Sending each one costs an ASGI
``send`` (a server write) per event, which dominated the translated stream path. A writer
task of its own sends whatever has accumulated since its last send: idle, a frame leaves
at once (one task switch later); busy, everything rendered meanwhile leaves in one write.
A bounded buffer gives backpressure: past ``high_water`` bytes the producer waits for the
writer, so a slow client cannot make the gateway buffer an upstream without limit.
"""

from __future__ import annotations

import asyncio

from .http import Send


class BodyWriter:
    __slots__ = ("_buf", "_closed", "_drained", "_high", "_ready", "_send", "_size", "_task")

    def __init__(self, send: Send, high_water: int = 1 << 20) -> None:
        self._send = send
        self._buf: list[bytes] = []
        self._size = 0
        self._high = high_water
        self._closed = False
        self._ready = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._task = asyncio.ensure_future(self._run())

    async def write(self, data: bytes) -> None:
        if self._task.done():
            self._task.result()  # the client went away: raise the send's error here
            raise RuntimeError("write after close")
        self._buf.append(data)
        self._size += len(data)
        self._ready.set()
        if self._size > self._high:
            self._drained.clear()
            await self._drained.wait()

    async def close(self) -> None:
        """Send what is left and end the body; raises if a send failed."""
        self._closed = True
        self._ready.set()
        await self._task

    def abort(self) -> None:
        """Stop without ending the body (the client left or the pump failed)."""
        self._task.cancel()

    async def _run(self) -> None:
        send = self._send
        while True:
            if not self._buf and not self._closed:
                await self._ready.wait()
                self._ready.clear()
            if self._buf:
                buf = self._buf
                data = buf[0] if len(buf) == 1 else b"".join(buf)
                self._buf = []
                self._size = 0
                self._drained.set()
                await send({"type": "http.response.body", "body": data, "more_body": True})
                continue
            if self._closed:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return

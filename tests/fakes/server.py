"""The harness every fake upstream shares: an aiohttp app on a free 127.0.0.1 port,
served by its own event loop in a background thread, so synchronous tests (and the
gateway subprocess) can talk to it over a real socket."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Self

from aiohttp import web


class ThreadedServer:
    """Subclasses implement ``add_routes``. Use as a context manager or ``start()``/``stop()``.

    ``handler_cancellation``: a client that disconnects cancels its handler at once (how a
    fake timestamps an early close precisely)."""

    handler_cancellation = False
    client_max_size = 64 * 1024 * 1024

    def __init__(self) -> None:
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, args=(sock,), daemon=True,
                                        name=f"{type(self).__name__}-{self.port}")
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"{type(self).__name__} did not start: {self._error!r}")

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
        self._loop = self._thread = None

    def _run(self, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            app = web.Application(client_max_size=self.client_max_size)
            self.add_routes(app)
            runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                   shutdown_timeout=0.5,
                                   handler_cancellation=self.handler_cancellation)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.SockSite(runner, sock).start())
        except BaseException as e:
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

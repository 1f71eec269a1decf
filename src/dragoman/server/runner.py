"""Run the ASGI app under a production server.

uvicorn (uvloop + httptools, behind the request-head guard of ``protocol``) is the
default for ``dragoman serve`` and serves the in-process Python API (``dragoman.serve``,
which needs an app object inside an existing event loop); granian is the alternative
(``--server granian``). The choice is measured in bench/README.md.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from .http_limits import HttpLimits
from .protocol import LimitedConfig

DEFAULT_SERVER = "uvicorn"
#: Seconds a uvicorn worker may take to answer its supervisor (see ``run``).
WORKER_HEALTHCHECK_TIMEOUT = 60


def settle_heap() -> None:
    """Tune the cyclic garbage collector for a long-lived server, once start-up is done.

    A full collection walks every tracked object: the ~50k that imports and the gateway
    leave behind cost ~30 ms per walk on the bench machine, a pause in whichever request
    is running. Freezing moves the start-up objects (they live as long as the worker) out
    of every later walk, and a first-generation threshold of 10,000 allocations (default
    700) makes collections rarer: together 20-28 % less CPU per request at saturation.
    Request garbage is freed by reference counting either way. See bench/README.md.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def run(*, host: str, port: int, workers: int = 1, server: str | None = None,
        limits: HttpLimits | None = None,
        on_listening: Callable[[], None] | None = None) -> None:
    """Serve ``$DRAGOMAN_CONFIG``'s gateway until stopped. ``on_listening`` runs once the
    port is bound and listening (a busy port fails before it, with the bind error)."""
    server = server or os.environ.get("DRAGOMAN_SERVER") or DEFAULT_SERVER
    limits = limits or HttpLimits()
    target = "dragoman.worker:create_app"  # (config builds the gateway: above server/)
    if server == "granian":
        from granian import Granian
        from granian.constants import Interfaces, Loops
        from granian.http import HTTP1Settings

        # granian binds in its own process: the port is probed first, so a busy one
        # fails before the announcement (a race with another process binding it between
        # the two remains). Its HTTP/1 settings cover the head size and head timeout.
        _probe(host, port)
        if on_listening is not None:
            on_listening()
        h1 = HTTP1Settings(header_read_timeout=int(limits.head_timeout * 1000),
                           max_buffer_size=max(limits.max_head_bytes, 8192))
        Granian(target, address=host, port=port, interface=Interfaces.ASGI, workers=workers,
                factory=True, loop=Loops.uvloop, log_access=False, websockets=False,
                http1_settings=h1).serve()
        return

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    # A worker that has not answered the supervisor's ping within the health-check timeout
    # is killed and replaced. Uvicorn's 5 s is shorter than a worker's start-up (imports,
    # the gateway) on a busy host or a CPU-limited container, where workers were then
    # replaced forever and the server never answered.
    config = LimitedConfig(target, limits=limits, factory=True, host=host, port=port,
                           workers=workers, loop="uvloop", log_level="warning",
                           access_log=False, lifespan="on",
                           timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT)
    sock = config.bind_socket()  # a busy port: logs the error and exits
    sock.listen(config.backlog)
    if on_listening is not None:
        on_listening()
    try:
        if workers > 1:
            Multiprocess(config, sockets=[sock]).run()
        else:
            userver = uvicorn.Server(config)
            userver.run(sockets=[sock])
            if not userver.started:
                sys.exit(3)  # (uvicorn's start-up failure code: the application failed)
    except KeyboardInterrupt:
        pass


def _probe(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            sys.exit(f"dragoman: cannot listen on {host}:{port}: {e.strerror}")


async def serve(app: Any, *, host: str = "127.0.0.1", port: int = 8080,
                limits: HttpLimits | None = None) -> None:
    """Serve an app object in the running event loop until cancelled. Cancelling is a
    graceful shutdown: open requests finish, the lifespan shutdown (closing pools and
    stores) runs, then the cancellation propagates."""
    import uvicorn

    config = LimitedConfig(app, limits=limits, host=host, port=port, loop="none",
                           log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    # uvicorn installs signal handlers only in its own run(); serve() inside our loop is
    # stopped through should_exit, so the server runs in its own task that we never cancel.
    task = asyncio.ensure_future(server.serve())
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        await task
        raise

"""The ceiling: the least a Python forwarding proxy can do, to measure dragoman against.

Two forms, both forwarding the request body as is and the upstream's answer as it comes
(a stream chunk by chunk, each network read one write):

* ``app`` — a raw ASGI callable (no framework) for the same server dragoman runs under:
  ``uvicorn ceiling:app --app-dir bench --loop uvloop --http httptools``, forwarding
  through the same upstream client dragoman uses (``dragoman.net.HttpClient``, on
  ``net.h1``). This is the ceiling for dragoman's own code: everything above it is what
  dragoman adds. ``CEILING_CLIENT=aiohttp`` forwards through one aiohttp
  ``ClientSession`` instead (what this ceiling was before dragoman had its own client).
* ``python bench/ceiling.py --port P [--workers N]`` — the bare aiohttp server + client
  relay of bench/reference-measurements.md (~60 lines there): no ASGI layer at all.

Upstreams come from ``CEILING_NGINX`` and ``CEILING_PACED`` (base URLs): paths under
``/paced/`` go to the paced SSE upstream, everything else to nginx.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

NGINX = os.environ.get("CEILING_NGINX", "http://127.0.0.1:18080")
PACED = os.environ.get("CEILING_PACED", "http://127.0.0.1:18090")
_FORWARD = {"content-type": "application/json"}

_session: aiohttp.ClientSession | None = None


def session() -> aiohttp.ClientSession:
    # Created lazily: an aiohttp session belongs to the event loop that runs it.
    global _session
    if _session is None:
        _session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=300),
            skip_auto_headers=("User-Agent",))
    return _session


def upstream_url(path: str) -> str:
    return (PACED if path.startswith("/paced/") else NGINX) + path


# --- raw ASGI -----------------------------------------------------------------------------

Message = dict[str, Any]
_clients: dict[str, Any] = {}


def h1_client(base: str) -> Any:
    from dragoman.net import HttpClient

    c = _clients.get(base)
    if c is None:
        c = _clients[base] = HttpClient(base, limit=0)
    return c


async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[Message]],
              send: Callable[[Message], Awaitable[None]]) -> None:
    if scope["type"] != "http":
        return
    msg = await receive()
    body = msg.get("body", b"")
    while msg.get("more_body"):
        msg = await receive()
        body += msg.get("body", b"")
    if os.environ.get("CEILING_CLIENT") == "aiohttp":
        await _app_aiohttp(scope, body, send)
        return
    path = scope["path"]
    up = await h1_client(PACED if path.startswith("/paced/") else NGINX).request(
        "POST", path, body=body, headers=_FORWARD)
    ctype = up.headers.get("content-type", "application/octet-stream").encode()
    if ctype.startswith(b"text/event-stream"):
        await send({"type": "http.response.start", "status": up.status,
                    "headers": [(b"content-type", ctype)]})
        async for chunk in up.iter_chunks():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        up.release()
        await send({"type": "http.response.body", "body": b""})
        return
    data = await up.read()
    up.release()
    await send({"type": "http.response.start", "status": up.status,
                "headers": [(b"content-type", ctype),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


async def _app_aiohttp(scope: dict[str, Any], body: bytes,
                       send: Callable[[Message], Awaitable[None]]) -> None:
    async with session().post(upstream_url(scope["path"]), data=body,
                              headers=_FORWARD) as resp:
        ctype = resp.headers.get("content-type", "application/octet-stream").encode()
        if ctype.startswith(b"text/event-stream"):
            await send({"type": "http.response.start", "status": resp.status,
                        "headers": [(b"content-type", ctype)]})
            async for chunk in resp.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        data = await resp.read()
        await send({"type": "http.response.start", "status": resp.status,
                    "headers": [(b"content-type", ctype),
                                (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})


# --- bare aiohttp relay --------------------------------------------------------------------


async def relay(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    async with session().post(upstream_url(request.path), data=body,
                              headers=_FORWARD) as resp:
        ctype = resp.headers.get("content-type", "application/octet-stream")
        if not ctype.startswith("text/event-stream"):
            return web.Response(status=resp.status, body=await resp.read(),
                                headers={"Content-Type": ctype})
        out = web.StreamResponse(status=resp.status, headers={"Content-Type": ctype})
        await out.prepare(request)
        async for chunk in resp.content.iter_any():
            await out.write(chunk)
        await out.write_eof()
        return out


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main() -> None:
    ap = argparse.ArgumentParser(description="bare aiohttp relay (the aiohttp ceiling)")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    # One listening socket, inherited by forked workers: the kernel spreads connections.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(4096)
    for _ in range(args.workers - 1):
        if os.fork() == 0:
            break
    application = web.Application()
    application.router.add_route("*", "/{tail:.*}", relay)
    web.run_app(application, sock=sock, access_log=None, print=None, loop=_new_loop())


if __name__ == "__main__":
    main()

"""X-Forwarded-For / -Proto from a trusted proxy (loopback, uvicorn's default) under
dragoman's server: the app sees the forwarded client and scheme, as uvicorn's
``ProxyHeadersMiddleware`` sets them. The server runs the app bare for a request with
neither header (``server/protocol.py``); these requests check both ways, on one
keep-alive connection so that the choice is made per request."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from dragoman.server.runner import serve
from tests.gateway_proc import free_port


async def test_forwarded_headers_set_client_and_scheme_per_request() -> None:
    seen: list[tuple[Any, str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()
        seen.append((scope["client"], scope["scheme"]))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    port = free_port()
    task = asyncio.create_task(serve(app, port=port))
    try:
        for _ in range(200):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.05)
        heads = [b"",
                 b"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n",
                 b"",
                 b"x-forwarded-proto: https\r\n"]
        for extra in heads:
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n")
            answer = await reader.readuntil(b"\r\n\r\nok")
            assert answer.startswith(b"HTTP/1.1 200 ")
        writer.close()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    (plain, plain_scheme), forwarded, again, proto_only = seen
    assert plain[0] == "127.0.0.1" and plain_scheme == "http"
    assert forwarded == (("203.0.113.7", 0), "https")
    assert again == (plain, "http")  # the next request on the connection: bare again
    assert proto_only == (plain, "https")

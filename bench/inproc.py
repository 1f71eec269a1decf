"""dragoman's own cost per request, without sockets: the ASGI app driven directly.

    python bench/inproc.py [--requests 20000] [--profile]

The wrk-based scenarios measure through the kernel and the ASGI server, and on this VM
two runs of the same code can differ by 25 %. This drives the app in-process with the
offline echo model (no upstream I/O), so what is left is dragoman's own work per
request — auth, parse, routing, dispatch, render, accounting. It still varies by about
±10 % between runs here (the host's noise): compare alternating runs. Prints µs per
request for a Chat request (whole and streamed); ``--profile`` prints the top functions
by own time (cProfile).
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/profile.py would shadow the standard library's ``profile``, which cProfile imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from dragoman.config import build_gateway, parse_config  # noqa: E402


def _scope(body: bytes) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/v1/chat/completions",
            "client": ("127.0.0.1", 40000),
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"authorization", b"Bearer bench")]}


async def _run(n: int, stream: bool) -> float:
    gw = build_gateway(parse_config({"models": [{"name": "e", "provider": "echo"}],
                                     "sessions": {"backend": "memory"}}))
    app = gw.app()
    body = json.dumps({"model": "e", "stream": stream,
                       "messages": [{"role": "user", "content": "Say hello"}]}).encode()
    scope = _scope(body)
    forever = asyncio.Event()

    async def one() -> None:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await forever.wait()  # the client never leaves
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            return None

        await app(scope, receive, send)  # type: ignore[operator]

    await gw.open()
    for _ in range(min(n, 500)):  # warm-up
        await one()
    began = time.perf_counter()
    for _ in range(n):
        await one()
    took = time.perf_counter() - began
    await gw.aclose()
    return took / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(asyncio.run, _run(args.requests, False))
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    for stream in (False, True):
        best = min(asyncio.run(_run(args.requests, stream)) for _ in range(3))
        print(f"chat {'stream' if stream else 'whole '}: {best:6.1f} µs per request "
              "(echo model, in-process, best of 3)")


if __name__ == "__main__":
    main()

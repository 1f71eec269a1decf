"""Instructions per inner model call over HTTP, and per piece of it (issue 14).

    python bench/inner_call.py [--pieces complete,stream,pair,body,answer,frames,head]
                               [--loop uvloop]

One ``OpenAIChat.complete()`` (what an orchestrator's ``call_whole`` calls) against
``bench/scripted_upstream.py`` (started here, in a process of its own: its instructions
are not counted), counted by valgrind's callgrind as ``bench/instr.py`` counts a gateway
request: a short and a long series, the difference per call (repeatable to ~1 %,
whatever the machine's load). The pieces, each alone in a loop in process:

* ``complete``: the whole call, socket included;
* ``stream``: one ``OpenAIChat.stream()`` read to its end (what an orchestrator's
  streamed inner call does): the scripted SSE answer's five frames (role, text, finish,
  usage, ``[DONE]``), socket included;
* ``pair``: two ``complete()`` calls at once on one provider (two pooled connections in
  use together, as a Conductor plan's two workers), per call;
* ``body``: the request rendered and encoded (``HttpDialectProvider._body``);
* ``answer``: the scripted JSON answer's bytes read into a ``ChatResponse``
  (``HttpDialectProvider.response_of``, what ``complete()`` does after the read);
* ``frames``: the scripted SSE answer's bytes read into events (one ``EventReader``, as
  ``stream()`` builds one per call: the SSE split and the Chat chunk parser);
* ``head``: the request's headers and head bytes (``send_headers``, ``request_head``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scripted_upstream as su  # the server
from instr import instructions

PIECES = ("complete", "stream", "pair", "body", "answer", "frames", "head")
SHORT, LONG = 200, 1200


def _provider(url: str) -> Any:
    from dragoman.providers import OpenAIChat

    return OpenAIChat(model="m", base_url=url or "http://127.0.0.1:9/v1", api_key="sk-bench")


def _request() -> Any:
    from dragoman.agents.orchestrator import user
    from dragoman.core import ChatRequest

    return ChatRequest(model="m", messages=[user(su.PROMPT)])


async def _drive(piece: str, n: int, url: str) -> None:
    """Run inside valgrind: ``n`` of ``piece``."""
    p, req = _provider(url), _request()
    if piece == "complete":
        for _ in range(n):
            await p.complete(req)
    elif piece == "stream":
        for _ in range(n):
            async for _event in p.stream(req):
                pass
    elif piece == "pair":
        for _ in range(n // 2):
            await asyncio.gather(p.complete(req), p.complete(req))
    elif piece == "body":
        for _ in range(n):
            p._body(req, False)
    elif piece == "answer":
        raw = su.completion("m", su.ANSWER)
        for _ in range(n):
            p.response_of(raw, req)
    elif piece == "frames":
        from dragoman.providers.upstream_call import EventReader

        raw = su.sse("m", su.ANSWER, 1)
        for _ in range(n):
            reader = EventReader(p.stream_decoder(), p.upstream_stream_parser(req))
            reader.feed(raw, [])
    elif piece == "head":
        from dragoman.net.h1 import request_head

        for _ in range(n):
            request_head("POST", "/v1/chat/completions", "127.0.0.1:1",
                         p.send_headers(req, False), 300)
    await p.aclose()


def _count(piece: str, n: int, url: str, loop: str) -> int:
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
           __file__, "--drive", piece, "--n", str(n), "--url", url, "--loop", loop]
    env = {"PYTHONHASHSEED": "0", **os.environ}
    return instructions(subprocess.run(cmd, capture_output=True, text=True, check=True,
                                       env=env).stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--pieces", default=",".join(PIECES))
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    ap.add_argument("--requests", default=f"{SHORT},{LONG}",
                    help="the short and the long series' lengths")
    ap.add_argument("--drive", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--url", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    run = asyncio.run
    if args.loop == "uvloop":
        import uvloop

        run = uvloop.run
    if args.drive:
        run(_drive(args.drive, args.n, args.url))
        return
    short, long = (int(x) for x in args.requests.split(","))
    with su.Upstream(sys.executable) as up:
        for piece in args.pieces.split(","):
            per = (_count(piece, long, up.url, args.loop)
                   - _count(piece, short, up.url, args.loop)) / (long - short)
            print(f"{piece:>9}: {per / 1e3:7.1f}k instructions per call ({args.loop})",
                  flush=True)


if __name__ == "__main__":
    main()

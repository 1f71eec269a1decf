"""Which dragoman modules one request walks through, ingress to upstream and back.

    python bench/walk.py [--dot DIR]

Drives the ASGI app in-process (as ``bench/instr.py`` does) against a small upstream on
loopback that answers in the OpenAI Chat and Anthropic Messages wires, and records, with
``sys.setprofile``, every ``dragoman`` module whose code runs while one request is served:
a streamed Chat request forwarded as is to an ``openai`` model (the same-dialect
pass-through), and the same request translated to an ``anthropic`` model. Each path is run
once before it is recorded, so imports and first-use caches do not count. Prints the
modules in the order they are first entered; ``--dot DIR`` also writes each walk as a
Graphviz file and, when ``dot`` is installed, an SVG, and the same for the import graph
between dragoman's packages (drawn from grimp, import-linter's graph): the pictures of
docs/architecture.md.

What counts as a module "visited" is one whose function (or generator step) runs, so a
module that only holds a type the request passes through is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from instr import chat_request

CHAT_SSE = b"".join(
    b"data: " + json.dumps(c, separators=(",", ":")).encode() + b"\n\n" for c in (
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "up",
         "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"},
                      "finish_reason": None}]},
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "up",
         "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "up",
         "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1,
                                  "total_tokens": 4}},
    )) + b"data: [DONE]\n\n"

ANTHROPIC_SSE = b"".join(
    b"event: " + name.encode() + b"\ndata: " + json.dumps(data, separators=(",", ":")).encode()
    + b"\n\n" for name, data in (
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "up",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Hi"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 1}}),
        ("message_stop", {"type": "message_stop"}),
    ))


async def _upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Keep-alive HTTP/1.1: a Chat stream on ``…/chat/completions``, else an Anthropic one."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError):
            return  # the gateway closed its connection
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        body = CHAT_SSE if b"/chat/completions" in head.split(b"\r\n", 1)[0] else ANTHROPIC_SSE
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"content-length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()


class Walk:
    """Modules in first-entered order, and the caller → callee module edges seen."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.edges: dict[tuple[str, str], int] = {}

    def profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        mod = frame.f_globals.get("__name__", "")
        if not mod.startswith("dragoman."):
            return
        if mod not in self.order:
            self.order.append(mod)
        caller = frame.f_back
        while caller is not None:
            cm = caller.f_globals.get("__name__", "")
            if cm.startswith("dragoman."):
                if cm != mod:
                    self.edges.setdefault((cm, mod), len(self.edges))
                break
            caller = caller.f_back


def _gateway(provider: str, base_url: str) -> Any:
    from dragoman.config import build_gateway, parse_config

    model = {"name": "m", "provider": provider, "model": "up", "base_url": base_url,
             "api_key": "sk-up"}
    return build_gateway(parse_config({"server": {"api_keys": ["walk"]}, "models": [model],
                                       "sessions": {"backend": "memory"}}))


async def _one(app: Any) -> bytes:
    scope, body = chat_request(True, "walk")
    sent = False
    gone = asyncio.Event()
    out: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(m: dict[str, Any]) -> None:
        if m["type"] == "http.response.body":
            out.append(m.get("body", b""))

    await app(scope, receive, send)
    return b"".join(out)


async def walk(provider: str) -> tuple[Walk, bytes]:
    server = await asyncio.start_server(_upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    gw = _gateway(provider, f"http://127.0.0.1:{port}/v1" if provider == "openai"
                  else f"http://127.0.0.1:{port}")
    await gw.open()
    app = gw.app()
    try:
        await _one(app)  # warm: imports, caches, the upstream connection
        w = Walk()
        sys.setprofile(w.profile)
        try:
            answer = await _one(app)
        finally:
            sys.setprofile(None)
    finally:
        await gw.aclose()
        server.close()
    return w, answer


def _short(mod: str) -> str:
    return mod.removeprefix("dragoman.")


def to_dot(title: str, w: Walk) -> str:
    """The walk as a graph: modules clustered by package, numbered in first-entered order."""
    packages: dict[str, list[str]] = {}
    for m in w.order:
        packages.setdefault(_short(m).split(".")[0], []).append(m)
    lines = [f'digraph "{title}" {{', '  graph [rankdir=LR, fontname="Helvetica", '
             f'label="{title}: {len(w.order)} modules", labelloc=t, fontsize=16];',
             '  node [shape=box, style="rounded,filled", fillcolor="#f4f4f8", '
             'fontname="Helvetica", fontsize=11];', '  edge [color="#777777"];']
    for pkg, mods in packages.items():
        lines.append(f'  subgraph "cluster_{pkg}" {{ label="{pkg}/"; color="#bbbbcc";')
        for m in mods:
            lines.append(f'    "{m}" [label="{w.order.index(m) + 1}. {_short(m)}"];')
        lines.append("  }")
    for (a, b) in sorted(w.edges, key=w.edges.__getitem__):
        lines.append(f'  "{a}" -> "{b}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def packages_dot() -> str:
    """Which package imports which (grimp's graph, as ``lint-imports`` sees it), with the
    number of importing modules on each edge; the top-level modules that compose the
    whole (config, the CLI, the public shims) are left out."""
    import grimp

    graph = grimp.build_graph("dragoman")
    packages = sorted(m for m in graph.modules if m.count(".") == 1
                      and graph.find_children(m))
    lines = ['digraph "packages" {', '  graph [rankdir=BT, fontname="Helvetica"];',
             '  node [shape=box, style="rounded,filled", fillcolor="#f4f4f8", '
             'fontname="Helvetica"];', '  edge [color="#777777", fontname="Helvetica", '
             'fontsize=9];']
    for a in packages:
        lines.append(f'  "{_short(a)}";')
        for b in packages:
            if a == b:
                continue
            importers = {i["importer"] for i in graph.find_matching_direct_imports(
                import_expression=f"{a}.** -> {b}.**")} | {
                i["importer"] for i in graph.find_matching_direct_imports(
                    import_expression=f"{a}.** -> {b}")}
            if importers:
                lines.append(f'  "{_short(a)}" -> "{_short(b)}" [label="{len(importers)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _render(dot: Path, text: str) -> None:
    dot.write_text(text)
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg", "-o", str(dot.with_suffix(".svg")), str(dot)],
                       check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dot", type=Path, help="write walk-<path>.dot (and .svg) here")
    args = ap.parse_args()
    for name, provider in (("pass-through", "openai"), ("translated", "anthropic")):
        w, answer = asyncio.run(walk(provider))
        if b"Hi" not in answer:
            sys.exit(f"{name}: the answer did not arrive: {answer[:300]!r}")
        print(f"{name} (Chat client, streamed, {provider} upstream): "
              f"{len(w.order)} modules")
        for i, m in enumerate(w.order, 1):
            print(f"  {i:2}. {_short(m)}")
        if args.dot is not None:
            args.dot.mkdir(parents=True, exist_ok=True)
            _render(args.dot / f"walk-{name}.dot", to_dot(name, w))
    if args.dot is not None:
        _render(args.dot / "packages.dot", packages_dot())


if __name__ == "__main__":
    main()

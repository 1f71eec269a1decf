"""Scenario (f): the cost of each dialect translation, in-process.

    python bench/micro.py [--quick]
    python bench/micro.py --instructions   # per chunk, counted by callgrind (valgrind)

For every upstream dialect dragoman parses (OpenAI Chat, OpenAI Responses, Anthropic
Messages, Gemini, Bedrock Converse, Ollama), a 50-chunk text stream in that vendor's
wire format, one frame per network read, goes through what the provider runs (the frame
decoder: SSE, AWS event stream or NDJSON; the dialect's stream parser) and then the
client dialect's stream renderer, for each client dialect. Reported: µs per whole stream
(best of 5 rounds of the mean). ``pass-through`` is the same-dialect fast path instead:
the byte relay that forwards frames (net/sse.py) with the dialect's forwarding rules
reading usage.
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any

import msgspec

from dragoman.core import Finish, StreamEvent, TextDelta, Usage, UsageUpdate
from dragoman.dialects import (
    anthropic_messages,
    bedrock_converse,
    gemini,
    ollama,
    openai_chat,
    openai_responses,
)
from dragoman.dialects.contract import Dialect, RenderContext, UpstreamDialect
from dragoman.net import SseDecoder
from dragoman.net.sse import SseRelay
from dragoman.providers.base import NdjsonFrames
from dragoman.providers.bedrock import _EventStreamFrames

CHUNKS = 50
CLIENTS: dict[str, Dialect] = {
    "openai_chat": openai_chat.DIALECT,
    "openai_responses": openai_responses.DIALECT,
    "anthropic_messages": anthropic_messages.DIALECT,
}
_REQUESTS: dict[str, dict[str, Any]] = {
    "openai_chat": {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                    "stream": True, "stream_options": {"include_usage": True}},
    "openai_responses": {"model": "m", "input": "hi", "stream": True},
    "anthropic_messages": {"model": "m", "max_tokens": 256, "stream": True,
                           "messages": [{"role": "user", "content": "hi"}]},
}


def context(client: str) -> RenderContext:
    d = CLIENTS[client]
    return RenderContext(id=d.id_prefix + "bench", model="m", created=1700000000,
                         request=d.parse_request(dict(_REQUESTS[client])))


def neutral_events() -> list[StreamEvent]:
    out: list[StreamEvent] = [TextDelta(text=f"tok{i} ") for i in range(CHUNKS)]
    out.append(UsageUpdate(usage=Usage(input_tokens=5, output_tokens=CHUNKS)))
    out.append(Finish())
    return out


# --- upstream wire bytes, one list item per network read ----------------------------------


def _sse_reads(blob: bytes, sep: bytes = b"\n\n") -> list[bytes]:
    return [f + sep for f in blob.split(sep) if f]


def _rendered(client: str) -> list[bytes]:
    """What an upstream of a client-facing dialect sends is what our renderer of that
    dialect writes (the renderers are tested against the vendors' own streams)."""
    r = CLIENTS[client].stream_renderer(context(client))
    return _sse_reads(r.start() + b"".join(r.feed(e) for e in neutral_events()))


def _gemini() -> list[bytes]:
    enc = msgspec.json.encode
    reads = []
    for i in range(CHUNKS):
        chunk: dict[str, Any] = {"candidates": [{"content": {"parts": [{"text": f"tok{i} "}],
                                                             "role": "model"}, "index": 0}],
                                 "modelVersion": "gemini-bench", "responseId": "r1"}
        if i == CHUNKS - 1:
            chunk["candidates"][0]["finishReason"] = "STOP"
            chunk["usageMetadata"] = {"promptTokenCount": 5, "candidatesTokenCount": CHUNKS,
                                      "totalTokenCount": CHUNKS + 5}
        reads.append(b"data: " + enc(chunk) + b"\r\n\r\n")  # Gemini ends lines with CRLF
    return reads


def _es_header(name: str, value: str) -> bytes:
    n, v = name.encode(), value.encode()
    return struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v


def _es_event(event_type: str, obj: dict[str, Any]) -> bytes:
    """One AWS event-stream message: prelude (lengths + CRC), headers, payload, CRC."""
    headers = (_es_header(":event-type", event_type)
               + _es_header(":content-type", "application/json")
               + _es_header(":message-type", "event"))
    payload = msgspec.json.encode(obj)
    head = struct.pack(">II", 12 + len(headers) + len(payload) + 4, len(headers))
    body = head + struct.pack(">I", zlib.crc32(head)) + headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _bedrock() -> list[bytes]:
    reads = [_es_event("messageStart", {"role": "assistant"})]
    reads += [_es_event("contentBlockDelta", {"contentBlockIndex": 0,
                                              "delta": {"text": f"tok{i} "}})
              for i in range(CHUNKS)]
    reads.append(_es_event("contentBlockStop", {"contentBlockIndex": 0}))
    reads.append(_es_event("messageStop", {"stopReason": "end_turn"}))
    reads.append(_es_event("metadata", {"usage": {"inputTokens": 5, "outputTokens": CHUNKS,
                                                  "totalTokens": CHUNKS + 5},
                                        "metrics": {"latencyMs": 100}}))
    return reads


def _ollama() -> list[bytes]:
    line = {"model": "m", "created_at": "2026-01-01T00:00:00Z"}
    reads = [json.dumps({**line, "message": {"role": "assistant", "content": f"tok{i} "},
                         "done": False}).encode() + b"\n" for i in range(CHUNKS)]
    reads.append(json.dumps({**line, "message": {"role": "assistant", "content": ""},
                             "done": True, "done_reason": "stop", "prompt_eval_count": 5,
                             "eval_count": CHUNKS}).encode() + b"\n")
    return reads


Decoder = Any  # SseDecoder | NdjsonFrames | _EventStreamFrames (all: feed/close → frames)

#: upstream dialect → (its wire format as network reads, the frame decoder its provider uses)
UPSTREAMS: dict[str, tuple[UpstreamDialect, Callable[[], list[bytes]],
                           Callable[[], Decoder]]] = {
    "openai_chat": (openai_chat.DIALECT, lambda: _rendered("openai_chat"), SseDecoder),
    "openai_responses": (openai_responses.DIALECT, lambda: _rendered("openai_responses"),
                         SseDecoder),
    "anthropic_messages": (anthropic_messages.DIALECT,
                           lambda: _rendered("anthropic_messages"), SseDecoder),
    "gemini": (gemini.DIALECT, _gemini, SseDecoder),
    "bedrock_converse": (bedrock_converse.DIALECT, _bedrock, _EventStreamFrames),
    "ollama": (ollama.DIALECT, _ollama, NdjsonFrames),
}


def translate(upstream: str, client: str, reads: list[bytes]) -> bytes:
    """One stream through decoder → parser → renderer (what the translating path runs)."""
    dialect, _, make_decoder = UPSTREAMS[upstream]
    decoder = make_decoder()
    parser = dialect.stream_parser()
    renderer = CLIENTS[client].stream_renderer(context(client))
    out = [renderer.start()]
    for chunk in reads:
        for name, data in decoder.feed(chunk):
            for ev in parser.feed(name, data):
                out.append(renderer.feed(ev))
    for name, data in decoder.close():
        for ev in parser.feed(name, data):
            out.append(renderer.feed(ev))
    for ev in parser.close():
        out.append(renderer.feed(ev))
    return b"".join(out)


def scan(upstream: str, reads: list[bytes]) -> bytes:
    """One stream through the pass-through relay (same dialect on both sides)."""
    forward = CLIENTS[upstream].forward
    assert forward is not None
    s = SseRelay(forward.stream(False))
    out = [s.feed(chunk) for chunk in reads]
    out.append(s.end())
    return b"".join(out)


def _time_us(fn: Callable[[], object], iterations: int, rounds: int = 5) -> float:
    for _ in range(max(3, iterations // 10)):
        fn()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(iterations):
            fn()
        best = min(best, (time.perf_counter() - t0) / iterations)
    return best * 1e6


def _check(upstream: str, client: str, out: bytes) -> None:
    # Every word made it through: a translation that drops the text must not look fast.
    missing = [i for i in (0, CHUNKS // 2, CHUNKS - 1) if f"tok{i} ".encode() not in out]
    failed = any(m in out for m in (b'"error":{', b"event: error", b"response.failed"))
    if missing or failed:
        raise RuntimeError(f"{upstream} → {client}: broken translation "
                           f"(missing words {missing}):\n{out[-400:]!r}")


def run(quick: bool = False) -> dict[str, Any]:
    iterations = 40 if quick else 300
    rows: dict[str, dict[str, float | None]] = {}
    for upstream, (_, wire, _) in UPSTREAMS.items():
        reads = wire()
        row: dict[str, float | None] = {}
        for client in CLIENTS:
            _check(upstream, client, translate(upstream, client, reads))
            row[client] = round(_time_us(lambda u=upstream, c=client, r=reads:  # type: ignore[misc]
                                         translate(u, c, r), iterations), 1)
        if upstream in CLIENTS and CLIENTS[upstream].forward is not None:
            _check(upstream, upstream, scan(upstream, reads))
            row["pass-through"] = round(_time_us(lambda u=upstream, r=reads:  # type: ignore[misc]
                                                 scan(u, r), iterations), 1)
        else:
            row["pass-through"] = None
        row["wire_bytes"] = sum(len(r) for r in reads)
        rows[upstream] = row
    return {"chunks": CHUNKS, "iterations": iterations, "us_per_stream": rows}


def table(result: dict[str, Any]) -> str:
    cols = [*CLIENTS, "pass-through"]
    lines = ["| upstream dialect ↓ / client dialect → | " + " | ".join(cols)
             + " | wire bytes |", "|---" * (len(cols) + 2) + "|"]
    for upstream, row in result["us_per_stream"].items():
        cells = ["-" if row[c] is None else f"{row[c]:.0f}" for c in cols]
        lines.append(f"| {upstream} | " + " | ".join(cells) + f" | {row['wire_bytes']} |")
    return "\n".join(lines)


def _instructions(upstream: str, client: str, streams: int) -> int:
    """Instructions valgrind counts for ``streams`` translations of one stream, imports
    and set-up included (the caller subtracts two counts)."""
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
           __file__, "--drive", f"{upstream},{client},{streams}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    m = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if m is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out[-2000:]}")
    return int(m.group(1).replace(",", ""))


def instructions_per_chunk(upstream: str = "openai_chat") -> dict[str, float]:
    """Deterministic where the timings of ``run`` are not (a loaded machine): the
    instructions one chunk costs to decode, parse and render, for each client dialect."""
    few, many = 5, 25
    return {client: (_instructions(upstream, client, many)
                     - _instructions(upstream, client, few)) / ((many - few) * CHUNKS)
            for client in CLIENTS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--instructions", action="store_true",
                    help="instructions per chunk (OpenAI Chat upstream), by callgrind")
    ap.add_argument("--drive", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.drive:  # inside valgrind
        upstream, client, streams = args.drive.split(",")
        reads = UPSTREAMS[upstream][1]()
        for _ in range(int(streams)):
            translate(upstream, client, reads)
        return
    if args.instructions:
        for client, n in instructions_per_chunk().items():
            print(f"openai_chat → {client}: {n / 1000:.2f}k instructions per chunk")
        return
    print(f"µs per {CHUNKS}-chunk stream (decode + parse + render)")
    print(table(run(args.quick)))


if __name__ == "__main__":
    main()

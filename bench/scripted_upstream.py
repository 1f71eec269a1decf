"""A scripted, instant OpenAI Chat Completions upstream for the orchestrator benches.

    python bench/scripted_upstream.py [--port 0] [--deltas 1]

Prints ``http://127.0.0.1:PORT/v1`` on its first line once it listens, then serves

* ``POST /v1/chat/completions`` (or ``/chat/completions``): the answer of the request's
  model's script (``SCRIPTS``), at once — a JSON body, or with ``"stream": true`` a
  ``data:`` SSE stream (a role chunk, the text in ``--deltas`` chunks, the finish chunk,
  a usage chunk, ``[DONE]``, all in one write with a content-length: an instant model);
  usage is in both (10 prompt, 5 completion tokens);
* ``GET /stats``: ``{"requests": N, "streamed": S, "connections": C, "by_model": {...}}``,
  the chat requests served so far (S of them streamed) and the client connections they
  came on — how a bench counts a run's inner calls, and checks that its client keeps its
  connections, on the server's side.

It runs in a process of its own so that its CPU is never counted in the client's
``time.process_time``. ``bench/orchestrators.py --upstream http`` (dragoman) and
``bench/tako_orchestrators.py --upstream http`` (tako-ai-core) start it the same way,
so both orchestrators talk to the same server and get the same answers.

The scripts answer per model name and by the request's content exactly as
``bench/orchestrators.py``'s in-process ``Instant`` providers do (they are the same
functions): a Conductor coordinator plans, then halts once it sees the workers' results;
a role model says "VERDICT: ACCEPT" when its system prompt makes it the Verifier; every
other model gives one answer that never satisfies a verifier. Importing this module needs
only the standard library (tako's virtualenv imports the scripts); serving needs aiohttp.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

#: a Conductor plan with a chained second worker (it sees step 1), for our coordinator
PLAN = json.dumps({"thought": "split", "dispatch": [
    {"worker": "code", "task": "write merge sort"},
    {"worker": "math", "task": "analyse #1", "sees": [1]}], "halt": False})
#: tako's plan: two independent tasks (a tako Fake coordinator says this every turn)
TAKO_PLAN = json.dumps({"thought": "split", "dispatch": [
    {"worker": "code", "task": "write merge sort"}, {"worker": "math", "task": "analyse"}],
    "halt": False})
HALT = json.dumps({"halt": True, "final_answer": "Merge sort, O(n log n)."})
ANSWER = "an answer of medium length that never has the magic word"
#: what every run is asked
PROMPT = "Write code to sort a list"

#: a script: (the request's system text, its last user message) -> the answer
Script = Callable[[str, str], str]


def coordinator(system: str, question: str) -> str:
    """Plans, then halts once the workers' results come back."""
    return HALT if question.startswith("Worker results:") else PLAN


def role(system: str, question: str) -> str:
    """A Trinity role model: accepts when its system prompt makes it the Verifier."""
    if "Verifier" in system:
        return "VERDICT: ACCEPT"
    return "a plan or an answer of some length, about sorting lists"


def answer(system: str, question: str) -> str:
    return ANSWER


def planner(system: str, question: str) -> str:
    """tako's Conductor coordinator: the same two-task plan every turn, never halting."""
    return TAKO_PLAN


#: model name -> script (any other name: ``answer``)
SCRIPTS: dict[str, Script] = {"coord": coordinator, "planner": planner, "roles": role}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def reply_to(body: dict[str, Any]) -> str:
    """The scripted answer to a Chat Completions request body."""
    messages = body.get("messages") or []
    system = " ".join(_text(m.get("content")) for m in messages
                      if m.get("role") in ("system", "developer"))
    question = next((t for m in reversed(messages) if m.get("role") == "user"
                     for t in [_text(m.get("content"))] if t), "")
    return SCRIPTS.get(str(body.get("model")), answer)(system, question)


USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def completion(model: str, text: str) -> bytes:
    return json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000,
        "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": text}}],
        "usage": USAGE}).encode()


def sse(model: str, text: str, deltas: int) -> bytes:
    """The whole stream: role chunk, ``deltas`` text chunks, finish, usage, [DONE]."""
    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return "data: " + json.dumps({
            "id": "chatcmpl-bench", "object": "chat.completion.chunk",
            "created": 1700000000, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"
    size = max(1, -(-len(text) // deltas))
    frames = [chunk({"role": "assistant", "content": ""})]
    frames += [chunk({"content": text[i:i + size]}) for i in range(0, len(text), size)]
    frames.append(chunk({}, "stop"))
    frames.append("data: " + json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
        "model": model, "choices": [], "usage": USAGE}) + "\n\n")
    frames.append("data: [DONE]\n\n")
    return "".join(frames).encode()


SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}


async def serve(port: int, deltas: int) -> None:
    from aiohttp import web

    served: Counter[str] = Counter()
    streamed = 0
    peers: set[object] = set()  # client (host, port)s: one per connection opened

    async def chat(request: web.Request) -> web.StreamResponse:
        nonlocal streamed
        body = await request.json()
        model = str(body.get("model"))
        served[model] += 1
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        text = reply_to(body)
        if not body.get("stream"):
            return web.Response(body=completion(model, text), content_type="application/json")
        streamed += 1
        # instant: the whole stream in one write with the headers (one TCP segment). A
        # chunked response goes out in three (headers, frames, last chunk), which costs
        # a client ~90 µs of CPU per call in wake-ups here: transport, not orchestration
        return web.Response(body=sse(model, text, deltas), headers=SSE_HEADERS)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"requests": sum(served.values()), "streamed": streamed,
                                  "connections": len(peers), "by_model": dict(served)})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/chat/completions", chat)
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"http://127.0.0.1:{bound}/v1", flush=True)
    await asyncio.Event().wait()


class Upstream:
    """The server as a child process: ``with Upstream(python, deltas) as up: up.url``;
    ``up.requests()`` is the number of chat requests it has served."""

    def __init__(self, python: str = sys.executable, deltas: int = 1) -> None:
        self._cmd = [python, __file__, "--deltas", str(deltas)]
        self.url = ""

    def __enter__(self) -> Upstream:
        import subprocess

        self._proc = subprocess.Popen(self._cmd, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        self.url = self._proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self._proc.kill()
            raise SystemExit(f"the scripted upstream did not start: {self._cmd}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._proc.terminate()
        self._proc.wait(10)

    def requests(self) -> int:
        return int(self.stats()["requests"])

    def stats(self) -> dict[str, Any]:
        """The server's ``/stats``: requests, streamed, connections, by_model."""
        import urllib.request

        with urllib.request.urlopen(self.url.removesuffix("/v1") + "/stats") as r:
            stats: dict[str, Any] = json.load(r)
            return stats


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--deltas", type=int, default=1, help="text chunks per streamed answer")
    args = ap.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.deltas))

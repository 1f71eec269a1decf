"""Fake upstreams for the HTTP-generic provider: three small JSON APIs of the kinds such a
provider is configured for, each hand-written (never produced by dragoman's code):

``POST /api/generate``   an Ollama-generate-like API: ``{"model", "prompt", "system",
                         "options": {...}, "stream"}`` → one JSON object, or NDJSON lines
                         ``{"response": "<delta>", "done": false}`` … ``{"done": true,
                         "done_reason", "prompt_eval_count", "eval_count"}``
``POST /v1/completions`` a legacy-completions-like API (vLLM style): ``{"model", "prompt",
                         "max_tokens", "stream"}`` → ``{"choices": [{"text",
                         "finish_reason"}], "usage": {...}}``, or SSE ``data:`` frames
                         ending with ``data: [DONE]``
``POST /acme/chat``      a chat API with tools: ``{"messages", "tools", "images"}`` →
                         ``{"reply": {"text", "calls": [...]}, "stop", "tokens": {...}}``

Behaviour is picked by ``scenario:<name>`` in the request's text (default ``text``):
``text``, ``tools`` (acme: two parallel calls; after tool results: a text answer),
``error400/401/403/404/413/429/500/503/529`` (status with a JSON error body; 429 with
``retry-after: 7``; 413 with an HTML body), ``cut`` (stream: the connection drops after
the first delta; whole: drops before answering), ``malformed`` (a frame or body that is
not JSON), ``inband`` (stream: an error object in a frame). Every request is recorded.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer

KEY = "sk-generic-upstream-key"
CHUNKS = ("Hello", " from", " generic.")
TEXT = "".join(CHUNKS)
USAGE_IN, USAGE_OUT = 21, 3
CALLS = [{"id": "c-1", "name": "get_weather", "args": {"city": "Paris"}},
         {"id": "c-2", "name": "get_time", "args": {}}]
AFTER_TOOLS = "Sunny in Paris at noon."
_SCENARIO = re.compile(r"scenario:([a-z0-9_]+)")


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any


def _scenario(body: Any) -> str:
    m = _SCENARIO.search(json.dumps(body))
    return m.group(1) if m else "text"


def _frame(obj: Any) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


class GenericUpstream(ThreadedServer):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Seen] = []
        self._lock = threading.Lock()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/generate", self._generate)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/acme/chat", self._acme)

    def last(self, path: str) -> Seen:
        with self._lock:
            return [r for r in self.requests if r.path == path][-1]

    # --- shared behaviour ------------------------------------------------------------------

    async def _read(self, request: web.Request) -> tuple[Any, web.Response | None]:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        with self._lock:
            self.requests.append(Seen(request.path, dict(request.headers), body))
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return body, web.json_response({"error": {"message": "bad key sk-generic-upstream-key"
                                                      " provided"}}, status=401)
        scen = _scenario(body)
        m = re.fullmatch(r"error(\d{3})", scen)
        if m:
            status = int(m.group(1))
            if status == 413:
                return body, web.Response(status=413, text="<html><body>413 Request Entity "
                                          "Too Large</body></html>", content_type="text/html")
            headers = {"retry-after": "7"} if status == 429 else {}
            # a 400 that quotes the caller's key back, as some APIs do
            leak = f" (with key {KEY})" if status == 400 else ""
            return body, web.json_response({"error": {"message": f"failure {status} here{leak}",
                                                      "code": status}},
                                           status=status, headers=headers)
        return body, None

    @staticmethod
    async def _cut(request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()
        return resp

    async def _stream(self, request: web.Request, frames: list[bytes], content_type: str,
                      cut_after: int | None = None) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": content_type})
        await resp.prepare(request)
        for i, f in enumerate(frames):
            await resp.write(f)
            await asyncio.sleep(0.005)
            if cut_after is not None and i + 1 >= cut_after:
                return await self._cut(request, resp)
        await resp.write_eof()
        return resp

    # --- /api/generate (NDJSON) ----------------------------------------------------------

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        body, err = await self._read(request)
        if err is not None:
            return err
        scen = _scenario(body)
        if scen == "cut" and not body.get("stream"):
            return await self._cut(request, web.StreamResponse())
        final = {"model": body.get("model"), "done": True, "done_reason": "length",
                 "prompt_eval_count": USAGE_IN, "eval_count": USAGE_OUT}
        if not body.get("stream"):
            if scen == "malformed":
                return web.Response(text='{"response": "Hel', content_type="application/json")
            return web.json_response({**final, "response": TEXT})
        frames = [_frame({"model": body.get("model"), "response": c, "done": False})
                  for c in CHUNKS]
        if scen == "malformed":
            frames.insert(1, b'{"response": "oops\n')
        if scen == "inband":
            frames.insert(1, _frame({"error": "model crashed mid-way"}))
        frames.append(_frame({**final, "response": ""}))
        return await self._stream(request, frames, "application/x-ndjson",
                                  cut_after=1 if scen == "cut" else None)

    # --- /v1/completions (SSE) -------------------------------------------------------------

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body, err = await self._read(request)
        if err is not None:
            return err
        scen = _scenario(body)
        usage = {"prompt_tokens": USAGE_IN, "completion_tokens": USAGE_OUT,
                 "total_tokens": USAGE_IN + USAGE_OUT}
        if not body.get("stream"):
            return web.json_response({"id": "cmpl-1", "object": "text_completion",
                                      "choices": [{"index": 0, "text": TEXT,
                                                   "finish_reason": "stop"}],
                                      "usage": usage})

        def data(obj: Any) -> bytes:
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        frames = [data({"id": "cmpl-1", "choices": [{"index": 0, "text": c,
                                                      "finish_reason": None}]})
                  for c in CHUNKS]
        if scen == "malformed":
            frames.insert(1, b'data: {"choices": [\n\n')
        frames.append(data({"id": "cmpl-1", "choices": [{"index": 0, "text": "",
                                                          "finish_reason": "stop"}],
                            "usage": usage}))
        frames.append(b"data: [DONE]\n\n")
        return await self._stream(request, frames, "text/event-stream",
                                  cut_after=2 if scen == "cut" else None)

    # --- /acme/chat (tools) ----------------------------------------------------------------

    async def _acme(self, request: web.Request) -> web.StreamResponse:
        body, err = await self._read(request)
        if err is not None:
            return err
        msgs = body.get("messages") or []
        tokens = {"in": USAGE_IN, "out": USAGE_OUT}
        if _scenario(body) == "tools" and not any(m.get("role") == "tool" for m in msgs):
            return web.json_response({"reply": {"text": "Let me look.", "calls": [
                {"id": c["id"], "function": {"name": c["name"],
                                             "arguments": json.dumps(c["args"])}}
                for c in CALLS]}, "stop": "tool_calls", "tokens": tokens})
        if any(m.get("role") == "tool" for m in msgs):
            return web.json_response({"reply": {"text": AFTER_TOOLS}, "stop": "stop",
                                      "tokens": tokens})
        images = body.get("images") or []
        text = f"{TEXT} ({len(images)} images)" if images else TEXT
        return web.json_response({"reply": {"text": text}, "stop": "stop", "tokens": tokens})

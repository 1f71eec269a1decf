"""A fake Ollama server: ``POST /api/chat`` with NDJSON streams (providers.md § Ollama), on
the OpenAI fake's plumbing (recording, scenarios, shared fixture texts).

As Ollama: no credentials unless the fake is given a key (ollama.com: Bearer); ``stream``
defaults to TRUE when the body does not say; an unknown model is a 404 ``{"error": "model
… not found, try pulling it first"}``; images are raw base64 strings in ``images``; tool
calls in the history must carry OBJECT arguments (a string is a Go unmarshal error);
answers carry tool calls whole with object arguments and NO id, reasoning in
``message.thinking``, ``done_reason: "stop"`` even after tool calls, and usage as
``prompt_eval_count`` / ``eval_count`` on the ``done`` line; a failure after the 200 is a
final ``{"error": …}`` line.

It also serves ``GET /images/red.png`` (the shared 1x1 PNG) and ``GET /images/page.html``
(not an image), for the gateway's own URL-image fetching.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from aiohttp import web

from .upstream import (
    CUT,
    FOLLOWUP_CHUNKS,
    IMAGE_PNG,
    PARTIAL,
    PREAMBLE,
    RETRY_AFTER,
    TEXT_CHUNKS,
    THINK_ANSWER_CHUNKS,
    THINKING_CHUNKS,
    TRUNCATED_CHUNKS,
    FakeUpstream,
    Recorded,
    image_answer,
    image_note,
)

OLLAMA_MODEL = "llama-fake:8b"
PROMPT_EVAL, EVAL = 26, 9
TOOLS_PROMPT_EVAL, TOOLS_EVAL = 180, 24


def _j(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _validate(body: Any) -> None:
    if not isinstance(body, dict):
        raise _Reject(400, "invalid request body")
    if body.get("model") != OLLAMA_MODEL:
        raise _Reject(404, f"model \"{body.get('model')}\" not found, try pulling it first")
    msgs = body.get("messages")
    if not isinstance(msgs, list):
        raise _Reject(400, "messages is required")
    calls: dict[str, str] = {}
    for m in msgs:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant",
                                                             "tool"):
            raise _Reject(400, f"invalid role: {m.get('role') if isinstance(m, dict) else m}")
        if not isinstance(m.get("content", ""), str):
            raise _Reject(400, "json: cannot unmarshal array into Go struct field "
                               "Message.messages.content of type string")
        for img in m.get("images") or ():
            try:
                base64.b64decode(img, validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise _Reject(400, "illegal base64 data at input byte 0") from None
        for tc in m.get("tool_calls") or ():
            fn = tc.get("function") or {}
            if not isinstance(fn.get("arguments"), dict):
                raise _Reject(400, "json: cannot unmarshal string into Go struct field "
                                   "ToolCallFunction.messages.tool_calls.function.arguments "
                                   "of type api.ToolCallFunctionArguments")
            if tc.get("id"):
                calls[tc["id"]] = fn.get("name")
        if m["role"] == "tool" and m.get("tool_call_id") is not None \
                and calls.get(m["tool_call_id"]) != m.get("tool_name"):
            raise _Reject(400, "tool result does not match a tool call")
    if body.get("think") not in (None, True, False, "low", "medium", "high"):
        raise _Reject(400, f"invalid think value: {body.get('think')}")


def _image_notes(body: dict[str, Any]) -> list[str]:
    return [image_note(data=base64.b64decode(img)) for m in body["messages"]
            for img in m.get("images") or ()]


def _has_results(body: dict[str, Any]) -> bool:
    return any(m.get("role") == "tool" for m in body["messages"])


class FakeOllama(FakeUpstream):
    def __init__(self, key: str | None = None) -> None:
        super().__init__()
        self.key = key

    def vendor_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/chat", self._chat_api)
        app.router.add_get("/images/red.png", self._png)
        app.router.add_get("/images/page.html", self._html)

    async def _png(self, request: web.Request) -> web.Response:
        return web.Response(body=IMAGE_PNG, content_type="image/png")

    async def _html(self, request: web.Request) -> web.Response:
        return web.Response(text="<html>not an image</html>", content_type="text/html")

    def _err(self, rec: Recorded, status: int, message: str,
             headers: dict[str, str] | None = None) -> web.Response:
        return self._json(rec, {"error": message}, status, headers)

    async def _chat_api(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request, "ollama")
        # Ollama streams unless the body says otherwise.
        rec.stream = not (isinstance(rec.body, dict) and rec.body.get("stream") is False)
        if self.key is not None and rec.headers.get("authorization") != f"Bearer {self.key}":
            return self._err(rec, 401, "unauthorized")
        try:
            _validate(rec.body)
        except _Reject as e:
            return self._err(rec, e.status, e.message)
        scen = rec.scenario
        failures = {
            "error400": (400, "invalid options: num_ctx must be positive"),
            "error403": (403, "forbidden"),
            "error404": (404, f"model \"{OLLAMA_MODEL}\" not found, try pulling it first"),
            "error413": (413, "request body too large"),
            "error500": (500, "llama runner process has terminated: exit status 2"),
            "overloaded": (503, "server busy, please try again.  maximum pending requests "
                                "exceeded"),
        }
        if scen == "error429":
            return self._err(rec, 429, "too many requests", {"retry-after": RETRY_AFTER})
        if scen in failures:
            return self._err(rec, *failures[scen])
        body: dict[str, Any] = rec.body
        if scen == "tools" and _has_results(body):
            scen = "followup"
        if not rec.stream:
            if scen in ("cut", "malformed"):
                return await self._broken_json(request, rec, b'{"model":"llama-fake:8b","cr')
            if scen == "midstream_error":
                return self._err(rec, 500, "an error was encountered while running the model")
            return self._json(rec, self._whole(body, scen))
        return await self._ndjson(request, rec, self._lines(body, scen))

    async def _ndjson(self, request: web.Request, rec: Recorded,
                      lines: AsyncIterator[bytes]) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={"content-type": "application/x-ndjson"})
        rec.status = 200
        try:
            await resp.prepare(request)
            async for line in lines:
                if line is CUT:
                    return self._cut(request, rec, resp)
                await resp.write(line)
            await resp.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            self._gone(rec)
            raise
        return self._done(rec, resp)

    # --- answers ------------------------------------------------------------------------

    @staticmethod
    def _line(message: dict[str, Any], done: bool = False, reason: str = "stop",
              counts: tuple[int, int] = (PROMPT_EVAL, EVAL)) -> dict[str, Any]:
        obj: dict[str, Any] = {"model": OLLAMA_MODEL, "created_at": "2026-03-01T12:00:00.1Z",
                               "message": {"role": "assistant", "content": "", **message},
                               "done": done}
        if done:
            obj.update(done_reason=reason, total_duration=182242375, load_duration=41295167,
                       prompt_eval_count=counts[0], prompt_eval_duration=24573166,
                       eval_count=counts[1], eval_duration=115959084)
        return obj

    @staticmethod
    def _calls() -> list[dict[str, Any]]:
        return [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"function": {"name": "get_time", "arguments": {}}}]

    def _whole(self, body: dict[str, Any], scen: str) -> dict[str, Any]:
        if scen == "tools":
            return self._line({"content": PREAMBLE, "tool_calls": self._calls()}, True,
                              counts=(TOOLS_PROMPT_EVAL, TOOLS_EVAL))
        if scen == "thinking":
            return self._line({"content": "".join(THINK_ANSWER_CHUNKS),
                               "thinking": "".join(THINKING_CHUNKS)}, True)
        if scen == "truncated":
            return self._line({"content": "".join(TRUNCATED_CHUNKS)}, True, "length")
        if scen == "image":
            return self._line({"content": image_answer(_image_notes(body))}, True)
        chunks = FOLLOWUP_CHUNKS if scen == "followup" else TEXT_CHUNKS
        return self._line({"content": "".join(chunks)}, True)

    def _lines(self, body: dict[str, Any], scen: str) -> AsyncIterator[bytes]:
        def text(chunks: Any, reason: str = "stop") -> Iterator[bytes]:
            for c in chunks:
                yield _j(self._line({"content": c}))
            yield _j(self._line({}, True, reason))

        async def gen() -> AsyncIterator[bytes]:
            lines: list[bytes]
            if scen == "tools":
                lines = [_j(self._line({"content": PREAMBLE})),
                         _j(self._line({"tool_calls": self._calls()})),
                         _j(self._line({}, True, counts=(TOOLS_PROMPT_EVAL, TOOLS_EVAL)))]
            elif scen == "thinking":
                lines = [*(_j(self._line({"thinking": t})) for t in THINKING_CHUNKS),
                         *text(THINK_ANSWER_CHUNKS)]
            elif scen == "truncated":
                lines = list(text(TRUNCATED_CHUNKS, "length"))
            elif scen == "image":
                lines = list(text([image_answer(_image_notes(body))]))
            elif scen == "midstream_error":
                yield _j(self._line({"content": PARTIAL}))
                await asyncio.sleep(0.02)
                yield _j({"error": "an error was encountered while running the model: "
                                   "unexpected EOF"})
                return
            elif scen == "cut":
                lines = [_j(self._line({"content": PARTIAL})), CUT]
            elif scen == "malformed":
                lines = [_j(self._line({"content": PARTIAL})), b'{"model":"llama-fake:8b",\n',
                         *text(["!"])]
            else:
                lines = list(text(FOLLOWUP_CHUNKS if scen == "followup" else TEXT_CHUNKS))
            for line in lines:
                yield line

        return gen()

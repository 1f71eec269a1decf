"""A scripted OpenAI Chat Completions and Anthropic Messages upstream: each MODEL NAME
answers from its own script,
turn by turn — what orchestrator tests need (a coordinator that plans, workers that
answer, a judge that scores, each its own "model" on one fake server).

``ScriptedUpstream({"coord": [plan1, plan2], "coder": ["def f(): ..."], "judge": judge})``

A script is a list (the n-th request to that model gets the n-th entry; the last one
repeats) or a function of the request body. An entry is the reply text, or a ``Reply``
with chunks, delays, a stall before the first byte, an HTTP error, or usage. Replies are
hand-written vendor frames (Chat: ``data:`` chunks, a usage chunk, ``[DONE]``; Messages:
``event:`` frames from ``message_start`` to ``message_stop``), never produced by dragoman. Every request is recorded (``calls(model)``), with whether the
client closed it early; ``open`` counts the responses still being written.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer

KEY = "sk-scripted-upstream-key"


@dataclass(frozen=True)
class Reply:
    """``chunks`` default to ``text`` split in three; ``stall``: seconds before the
    response starts; ``gap``: seconds between chunks (a whole answer, not streamed, comes
    after the time its chunks would take); ``status``: an HTTP error instead;
    ``usage``: (prompt_tokens, completion_tokens)."""

    text: str = ""
    chunks: tuple[str, ...] | None = None
    stall: float = 0.0
    gap: float = 0.0
    status: int = 200
    usage: tuple[int, int] = (10, 5)
    finish: str = "stop"

    def parts(self) -> tuple[str, ...]:
        if self.chunks is not None:
            return self.chunks
        n = max(1, len(self.text) // 3)
        return tuple(self.text[i:i + n] for i in range(0, len(self.text), n)) or ("",)

    @property
    def whole(self) -> str:
        """The answer's text when it is not streamed: its chunks joined."""
        return "".join(self.parts())


Script = list[str | Reply] | Callable[[dict[str, Any]], str | Reply]


@dataclass
class Call:
    model: str
    body: dict[str, Any]
    #: the request's headers, names in lower case
    headers: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    finished: bool = False
    closed_early: bool = False

    @property
    def prompt(self) -> str:
        """Every message's text, joined (what the test asserts a model was shown)."""
        return "\n".join(_text(m.get("content")) for m in self.body.get("messages", []))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


def last_user(body: dict[str, Any]) -> str:
    """The text of the request's last user message."""
    for m in reversed(body.get("messages", [])):
        if m.get("role") == "user":
            return _text(m.get("content"))
    return ""


def system_text(body: dict[str, Any]) -> str:
    """The text of the request's system messages, joined."""
    return "\n".join(_text(m.get("content")) for m in body.get("messages", [])
                     if m.get("role") in ("system", "developer"))


class ScriptedUpstream(ThreadedServer):
    handler_cancellation = True

    def __init__(self, scripts: dict[str, Script] | None = None) -> None:
        super().__init__()
        self.scripts: dict[str, Script] = dict(scripts or {})
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self.open = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/messages", self._messages)

    def provider(self, model: str, vendor: str = "openai") -> dict[str, Any]:
        """A ``models:`` entry (named ``model``) for this upstream (``vendor``: openai or
        anthropic)."""
        base = self.url + "/v1" if vendor == "openai" else self.url
        return {"name": model, "provider": vendor, "model": model, "base_url": base,
                "api_key": KEY}

    def calls(self, model: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if model is None or c.model == model]

    def reset(self, scripts: dict[str, Script] | None = None) -> None:
        with self._lock:
            self._calls.clear()
            if scripts is not None:
                self.scripts = dict(scripts)

    def _reply(self, model: str, body: dict[str, Any], turn: int) -> Reply:
        script = self.scripts.get(model)
        if script is None:
            return Reply(status=404, text=f"no script for model {model!r}")
        entry = script(body) if callable(script) else script[min(turn, len(script) - 1)]
        return entry if isinstance(entry, Reply) else Reply(text=entry)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return web.json_response({"error": {"message": "bad key", "type": "auth"}},
                                     status=401)
        return await self._answer(request, await request.json(), _ChatWire())

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("x-api-key") != KEY:
            return web.json_response({"type": "error", "error": {
                "type": "authentication_error", "message": "bad key"}}, status=401)
        return await self._answer(request, await request.json(), _MessagesWire())

    async def _answer(self, request: web.Request, body: dict[str, Any],
                      wire: _ChatWire | _MessagesWire) -> web.StreamResponse:
        model = str(body.get("model"))
        with self._lock:
            turn = sum(1 for c in self._calls if c.model == model)
            call = Call(model=model, body=body,
                        headers={k.lower(): v for k, v in request.headers.items()})
            self._calls.append(call)
        reply = self._reply(model, body, turn)
        self.open += 1
        try:
            if reply.stall:
                await asyncio.sleep(reply.stall)
            if reply.status != 200:
                call.finished = True
                return web.json_response(wire.error(reply), status=reply.status)
            if not body.get("stream"):
                if reply.gap:  # a whole answer takes as long as its chunks would
                    await asyncio.sleep(reply.gap * (len(reply.parts()) - 1))
                call.finished = True
                return web.json_response(wire.whole(model, reply))
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(wire.head(model, reply))
            for i, part in enumerate(reply.parts()):
                if i and reply.gap:
                    await asyncio.sleep(reply.gap)
                await resp.write(wire.delta(model, i, part))
            await resp.write(wire.tail(model, reply))
            await resp.write_eof()
            call.finished = True
            return resp
        except (ConnectionError, asyncio.CancelledError):
            call.closed_early = True
            raise
        finally:
            self.open -= 1


class _ChatWire:
    """OpenAI Chat Completions frames."""

    @staticmethod
    def error(reply: Reply) -> dict[str, Any]:
        return {"error": {"message": reply.text or "scripted error", "type": "server_error",
                          "code": None}}

    @staticmethod
    def whole(model: str, reply: Reply) -> dict[str, Any]:
        return _completion(model, reply)

    @staticmethod
    def head(model: str, reply: Reply) -> bytes:
        return b""

    @staticmethod
    def delta(model: str, i: int, part: str) -> bytes:
        return _frame(_chunk(model, {"role": "assistant", "content": part} if i == 0
                             else {"content": part}))

    @staticmethod
    def tail(model: str, reply: Reply) -> bytes:
        return (_frame(_chunk(model, {}, reply.finish))
                + _frame({**_chunk(model, {}), "choices": [], "usage": _usage(reply)})
                + b"data: [DONE]\n\n")


_STOP = {"stop": "end_turn", "length": "max_tokens"}


class _MessagesWire:
    """Anthropic Messages frames."""

    @staticmethod
    def error(reply: Reply) -> dict[str, Any]:
        return {"type": "error", "error": {"type": "api_error",
                                           "message": reply.text or "scripted error"}}

    @staticmethod
    def whole(model: str, reply: Reply) -> dict[str, Any]:
        p, c = reply.usage
        return {"id": "msg_scripted", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": reply.whole}],
                "stop_reason": _STOP.get(reply.finish, "end_turn"), "stop_sequence": None,
                "usage": {"input_tokens": p, "output_tokens": c}}

    @staticmethod
    def head(model: str, reply: Reply) -> bytes:
        start = {"type": "message_start", "message": {
            "id": "msg_scripted", "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": reply.usage[0], "output_tokens": 1}}}
        block = {"type": "content_block_start", "index": 0,
                 "content_block": {"type": "text", "text": ""}}
        return _event("message_start", start) + _event("content_block_start", block)

    @staticmethod
    def delta(model: str, i: int, part: str) -> bytes:
        return _event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "text_delta", "text": part}})

    @staticmethod
    def tail(model: str, reply: Reply) -> bytes:
        return (_event("content_block_stop", {"type": "content_block_stop", "index": 0})
                + _event("message_delta", {
                    "type": "message_delta",
                    "delta": {"stop_reason": _STOP.get(reply.finish, "end_turn"),
                              "stop_sequence": None},
                    "usage": {"output_tokens": reply.usage[1]}})
                + _event("message_stop", {"type": "message_stop"}))


def _event(name: str, obj: Any) -> bytes:
    return f"event: {name}\n".encode() + _frame(obj)


def _usage(reply: Reply) -> dict[str, int]:
    p, c = reply.usage
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 1,
            "model": model, "choices": [{"index": 0, "delta": delta,
                                         "finish_reason": finish}]}


def _completion(model: str, reply: Reply) -> dict[str, Any]:
    return {"id": "chatcmpl-scripted", "object": "chat.completion", "created": 1,
            "model": model, "choices": [{"index": 0, "finish_reason": reply.finish,
                                         "message": {"role": "assistant",
                                                     "content": reply.whole}}],
            "usage": _usage(reply)}


def _frame(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"

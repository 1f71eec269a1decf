"""A fake Mistral La Plateforme: ``POST /v1/chat/completions`` speaking Mistral's variant of
the OpenAI Chat format (providers.md § Mistral), on the OpenAI fake's plumbing.

What it enforces, as Mistral does:

* ``Authorization: Bearer MISTRAL_KEY`` (else 401 ``{"message": "Unauthorized", ...}``);
* the request schema: any key outside it (``stream_options``, ``max_completion_tokens``,
  ``seed``, ``user``, ``logit_bias``…) is a 422 ``extra_forbidden`` whose ``message`` is a
  ``{"detail": [...]}`` object; roles are system/user/assistant/tool (``developer`` is a
  422 too); ``tool_choice`` is auto/none/any/required or a named function;
* tool call ids match ``^[a-zA-Z0-9]{9}$`` (else 400), a tool message answers a call of
  the preceding assistant turn, and the last message is user/tool or an assistant
  ``prefix: true``.

What it sends back, as Mistral does: its own 9-character tool call ids, tool calls whole in
one chunk, usage on the final chunk without being asked, ``content`` as a LIST of parts
for reasoning (``thinking`` parts, then text), ``data: [DONE]`` at the end. Scenarios and
fixture texts are those of ``tests/fakes/upstream.py``, plus ``repeat_call`` (the model
calls get_weather again with the id of the FIRST call in the history, as a model copying
an id would) and ``custom`` (a call of ``apply_patch`` with ``{"input": <patch>}``).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from .upstream import (
    CUT,
    FOLLOWUP_CHUNKS,
    MALFORMED_DATA,
    PARTIAL,
    PATCH,
    PATCH_TOOL,
    PREAMBLE,
    RETRY_AFTER,
    TEXT_CHUNKS,
    THINK_ANSWER_CHUNKS,
    THINKING_CHUNKS,
    TRUNCATED_CHUNKS,
    FakeUpstream,
    Recorded,
    _has_tool_results,
    _image_notes,
    data_frame,
    image_answer,
)

MISTRAL_KEY = "mistral-fake-key-AbCdEf012345"
MISTRAL_MODEL = "mistral-small-fake"
MISTRAL_CALL_IDS = ("D681PevKs", "a8F3kQ2pZ")

_KEYS = frozenset({
    "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop",
    "random_seed", "metadata", "response_format", "tools", "tool_choice", "presence_penalty",
    "frequency_penalty", "n", "prediction", "parallel_tool_calls", "prompt_mode",
    "safe_prompt", "reasoning_effort",
})
_ID = re.compile(r"[a-zA-Z0-9]{9}")
USAGE = {"prompt_tokens": 21, "total_tokens": 30, "completion_tokens": 9}
TOOLS_USAGE = {"prompt_tokens": 88, "total_tokens": 120, "completion_tokens": 32}


def _history_call_id(body: dict[str, Any]) -> str:
    for m in body["messages"]:
        for tc in m.get("tool_calls") or ():
            return str(tc["id"])
    return MISTRAL_CALL_IDS[0]


def _error(message: Any, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"object": "error", "message": message, "type": type_, "param": None, "code": code}


class _Reject(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


def _extra(loc: list[Any], value: Any, kind: str = "extra_forbidden",
           msg: str = "Extra inputs are not permitted") -> _Reject:
    return _Reject(422, _error({"detail": [{"type": kind, "loc": ["body", *loc], "msg": msg,
                                            "input": value}]}, "invalid_request_error"))


def _validate(body: Any) -> None:
    if not isinstance(body, dict):
        raise _extra([], body, "model_attributes_type", "Input should be a valid dictionary")
    for k in body:
        if k not in _KEYS:
            raise _extra([k], body[k])
    if not isinstance(body.get("model"), str):
        raise _extra(["model"], None, "missing", "Field required")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise _extra(["messages"], None, "missing", "Field required")
    tc = body.get("tool_choice")
    if tc is not None and tc not in ("auto", "none", "any", "required") and not (
            isinstance(tc, dict) and tc.get("type") == "function"):
        raise _extra(["tool_choice"], tc, "literal_error",
                     "Input should be 'auto', 'none', 'any' or 'required'")
    pending: set[str] = set()
    for i, m in enumerate(msgs):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("system", "user", "assistant", "tool"):
            raise _extra(["messages", i, "role"], role, "literal_error",
                         "Input should be 'system', 'user', 'assistant' or 'tool'")
        if role == "tool":
            tid = m.get("tool_call_id")
            if not isinstance(tid, str) or not _ID.fullmatch(tid):
                raise _Reject(400, _error(f"Tool call id was {tid} but must be a-z, A-Z, 0-9, "
                                          "with a length of 9.", "invalid_request_error"))
            if tid not in pending:
                raise _Reject(400, _error("Unexpected tool call id " + tid,
                                          "invalid_request_message_order"))
            pending.discard(tid)
            continue
        if pending and role != "assistant":
            raise _Reject(400, _error("Not the same number of function calls and responses",
                                      "invalid_request_message_order"))
        if role == "assistant":
            for tc_ in m.get("tool_calls") or ():
                tid = tc_.get("id")
                if not isinstance(tid, str) or not _ID.fullmatch(tid):
                    raise _Reject(400, _error(f"Tool call id was {tid} but must be a-z, A-Z, "
                                              "0-9, with a length of 9.",
                                              "invalid_request_error"))
                args = (tc_.get("function") or {}).get("arguments")
                if not isinstance(args, (str, dict)):
                    raise _extra(["messages", i, "tool_calls", "function", "arguments"], args,
                                 "string_type", "Input should be a valid string")
                pending.add(tid)
    last = msgs[-1]
    if last.get("role") == "assistant" and not last.get("prefix"):
        raise _Reject(400, _error("Expected last role User or Tool (or Assistant with prefix "
                                  "True) for serving but got assistant",
                                  "invalid_request_message_order"))


class FakeMistral(FakeUpstream):
    def vendor_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._mistral)

    async def _mistral(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request, "chat")
        if rec.headers.get("authorization") != f"Bearer {MISTRAL_KEY}":
            return self._json(rec, {"message": "Unauthorized",
                                    "request_id": "0b7c1f8e3d2a4b5c"}, 401)
        try:
            _validate(rec.body)
        except _Reject as e:
            return self._json(rec, e.body, e.status)
        failed = self._failure(rec)
        if failed is not None:
            return failed
        body: dict[str, Any] = rec.body
        scen = rec.scenario
        if scen in ("tools", "custom") and _has_tool_results("chat", body):
            scen = "followup"
        if not rec.stream:
            if scen in ("cut", "malformed"):
                return await self._broken_json(request, rec, b'{"id":"cmpl-fake","object":"chat.')
            return self._json(rec, self._mistral_json(body, scen))
        return await self._sse(request, rec, self._mistral_frames(body, scen))

    def _failure(self, rec: Recorded) -> web.Response | None:
        scen = rec.scenario
        if scen == "error429":
            return self._json(rec, _error("Requests rate limit exceeded", "rate_limited",
                                          "1300"), 429, {"retry-after": RETRY_AFTER})
        table = {
            "error400": (400, _error("Prompt contains 140000 tokens, too large for model with "
                                     "131072 maximum context length", "invalid_request_error",
                                     "3051")),
            "error403": (403, _error("You do not have access to this model",
                                     "invalid_request_error", "1700")),
            "error404": (404, _error("Invalid model: mistral-unknown", "invalid_model",
                                     "1500")),
            "error413": (413, _error("Request entity too large", "invalid_request_error")),
            "error500": (500, _error("Internal server error", "internal_server_error")),
            "overloaded": (503, _error("Service unavailable.", "service_unavailable")),
        }
        if scen == "midstream_error" and not rec.stream:
            scen = "error500"
        if scen in table:
            status, body = table[scen]
            return self._json(rec, body, status)
        return None

    # --- answers ------------------------------------------------------------------------

    @staticmethod
    def _completion(body: dict[str, Any], message: dict[str, Any], finish: str,
                    usage: dict[str, Any]) -> dict[str, Any]:
        return {"id": "0a6c8d2f4e1b4a3c9d7e5f1a2b3c4d5e", "object": "chat.completion",
                "model": body["model"], "created": 1741569952,
                "usage": usage,
                "choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": None,
                                                     "prefix": False, **message},
                             "finish_reason": finish}]}

    @staticmethod
    def _single_call(body: dict[str, Any], scen: str) -> dict[str, Any]:
        if scen == "custom":
            return {"id": MISTRAL_CALL_IDS[0], "function": {
                "name": PATCH_TOOL, "arguments": json.dumps({"input": PATCH})}, "index": 0}
        return {"id": _history_call_id(body), "function": {
            "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}, "index": 0}

    def _mistral_json(self, body: dict[str, Any], scen: str) -> dict[str, Any]:
        if scen in ("repeat_call", "custom"):
            return self._completion(body, {"content": "", "tool_calls": [
                {"type": "function", **self._single_call(body, scen)}]}, "tool_calls", USAGE)
        if scen == "tools":
            return self._completion(body, {"content": PREAMBLE, "tool_calls": [
                {"id": MISTRAL_CALL_IDS[0], "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"},
                 "index": 0},
                {"id": MISTRAL_CALL_IDS[1], "type": "function",
                 "function": {"name": "get_time", "arguments": "{}"}, "index": 1}]},
                "tool_calls", TOOLS_USAGE)
        if scen == "thinking":
            return self._completion(body, {"content": [
                {"type": "thinking", "thinking": [{"type": "text", "text": "".join(
                    THINKING_CHUNKS)}]},
                {"type": "text", "text": "".join(THINK_ANSWER_CHUNKS)}]}, "stop", USAGE)
        if scen == "truncated":
            return self._completion(body, {"content": "".join(TRUNCATED_CHUNKS)}, "length",
                                    USAGE)
        if scen == "image":
            return self._completion(body, {"content": image_answer(_image_notes("chat", body))},
                                    "stop", USAGE)
        chunks = FOLLOWUP_CHUNKS if scen == "followup" else TEXT_CHUNKS
        return self._completion(body, {"content": "".join(chunks)}, "stop", USAGE)

    def _mistral_frames(self, body: dict[str, Any], scen: str) -> AsyncIterator[bytes]:
        model = body["model"]

        def chunk(delta: dict[str, Any], finish: str | None = None,
                  usage: dict[str, Any] | None = None) -> bytes:
            c: dict[str, Any] = {"id": "5f1e2d3c4b5a69788796a5b4c3d2e1f0",
                                 "object": "chat.completion.chunk", "created": 1741569952,
                                 "model": model,
                                 "choices": [{"index": 0, "delta": delta,
                                              "finish_reason": finish, "logprobs": None}]}
            if usage is not None:
                c["usage"] = usage
            return data_frame(c)

        role = chunk({"role": "assistant", "content": ""})
        done = b"data: [DONE]\n\n"

        def text(chunks: tuple[str, ...] | list[str], finish: str = "stop") -> list[bytes]:
            return [role, *(chunk({"content": t}) for t in chunks),
                    chunk({"content": ""}, finish, USAGE), done]

        async def gen() -> AsyncIterator[bytes]:
            if scen == "tools":
                frames = [role, chunk({"content": PREAMBLE}),
                          chunk({"tool_calls": [
                              {"id": MISTRAL_CALL_IDS[0],
                               "function": {"name": "get_weather",
                                            "arguments": "{\"city\": \"Paris\"}"}, "index": 0},
                              {"id": MISTRAL_CALL_IDS[1],
                               "function": {"name": "get_time", "arguments": "{}"},
                               "index": 1}]}),
                          chunk({"content": ""}, "tool_calls", TOOLS_USAGE), done]
            elif scen in ("repeat_call", "custom"):
                frames = [role, chunk({"tool_calls": [self._single_call(body, scen)]}),
                          chunk({"content": ""}, "tool_calls", USAGE), done]
            elif scen == "thinking":
                frames = [role,
                          *(chunk({"content": [{"type": "thinking", "thinking": [
                              {"type": "text", "text": t}]}]}) for t in THINKING_CHUNKS),
                          # the answer: once as a part list, once as a plain string
                          chunk({"content": [{"type": "text", "text": THINK_ANSWER_CHUNKS[0]}]}),
                          chunk({"content": THINK_ANSWER_CHUNKS[1]}),
                          chunk({"content": ""}, "stop", USAGE), done]
            elif scen == "truncated":
                frames = text(TRUNCATED_CHUNKS, "length")
            elif scen == "image":
                frames = text([image_answer(_image_notes("chat", body))])
            elif scen == "midstream_error":
                for f in (role, chunk({"content": PARTIAL})):
                    yield f
                await asyncio.sleep(0.02)
                yield data_frame(_error("Internal server error", "internal_server_error"))
                return
            elif scen == "cut":
                frames = [role, chunk({"content": PARTIAL}), CUT]
            elif scen == "malformed":
                frames = [role, chunk({"content": PARTIAL}), MALFORMED_DATA,
                          chunk({"content": ""}, "stop", USAGE), done]
            else:
                frames = text(FOLLOWUP_CHUNKS if scen == "followup" else TEXT_CHUNKS)
            for f in frames:
                yield f

        return gen()


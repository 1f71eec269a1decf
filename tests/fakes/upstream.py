"""A fake upstream that speaks the three vendor wire formats byte for byte.

``FakeUpstream`` is a real aiohttp server on ``127.0.0.1`` (a free port), run in a
background thread with its own event loop. It serves

* ``POST /v1/chat/completions``        OpenAI Chat Completions (JSON or ``data:`` SSE)
* ``POST /v1/responses``               OpenAI Responses (JSON or ``event:``+``data:`` SSE)
* ``POST /v1/messages``                Anthropic Messages (JSON or ``event:`` SSE)
* ``POST /v1/messages/count_tokens``   Anthropic token counting

and records every request it receives (``.requests``), including whether the client
closed a streaming (or slow) response before it was finished, and when.

Every answer is a HAND-WRITTEN fixture following docs/protocols/*.md — nothing
here is produced by dragoman's own renderers, so the gateway's parsers are tested against
independent, vendor-shaped bytes. The scenario is picked from the last user message whose
text contains ``scenario:<name>`` (default ``text``):

``text``            a short reply, streamed in several chunks
``tools``           two parallel tool calls, get_weather {"city":"Paris"} and get_time {};
                    once the conversation carries tool results: a text answer
``thinking``        reasoning (Anthropic thinking + signature, Responses summary +
                    encrypted_content, Chat non-standard ``reasoning_content``), then text
``error429``        HTTP 429 in the vendor's envelope with ``retry-after: 7``
``error500``        HTTP 500 in the vendor's envelope
``midstream_error`` HTTP 200, some text, then an in-band error
``slow``            a chunk every 50 ms for about 10 s (cancellation tests)
``custom``          one call of the free-text tool ``apply_patch`` (a Codex-style custom
                    tool): a native custom call when the request declared a custom tool
                    (Chat ``type:"custom"``, Responses ``custom_tool_call``), else a
                    function call with arguments ``{"input": <patch>}`` (how a translator
                    emulates it; Anthropic always); after the tool result: a text answer
``truncated``       a reply cut by the output cap (Chat ``length``, Responses
                    ``incomplete``/``max_output_tokens``, Anthropic ``max_tokens``)
``error400``        HTTP 400: the prompt is longer than the context window
``overloaded``      OpenAI HTTP 503 / Anthropic HTTP 529 ``overloaded_error``
``error403``        OpenAI: HTTP 403, no access to the model
``error404``        OpenAI: HTTP 404, the model does not exist
``error413``        OpenAI: HTTP 413 from the front proxy (an HTML body, not JSON)
``image``           a description of every image received (``image_answer``): size and
                    digest of inline data, or the URL (OpenAI)
``cut``             OpenAI: the connection drops halfway (stream: after some text)
``malformed``       OpenAI: a frame (non-stream: a body) that is not valid JSON
``refusal``, ``phase``, ``citations``: see ``complete_model``

Like the real APIs, the fake checks the credentials (Bearer for OpenAI; ``x-api-key`` or
Bearer plus ``anthropic-version`` for Anthropic) and the structural rules a translator
most easily breaks (Anthropic ``max_tokens``, roles, tool_result placement; OpenAI tool
messages answering a preceding call), answering in the vendor's own error envelope.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import complete_model
from tests.fakes.server import ThreadedServer

OPENAI_KEY = "sk-fake-openai-upstream-key"
ANTHROPIC_KEY = "sk-ant-fake-upstream-key"

# --- fixture content (shared by the three vendors so tests can compare across them) -----

TEXT_CHUNKS = ("Hello", " from the", " fake", " upstream.")
TEXT = "".join(TEXT_CHUNKS)

PREAMBLE = "Let me check."
WEATHER_ARGS = {"city": "Paris"}
TIME_ARGS: dict[str, Any] = {}
FOLLOWUP_CHUNKS = ("It is 18C and sunny", " in Paris; the time is 12:00.")
FOLLOWUP = "".join(FOLLOWUP_CHUNKS)

#: tool-call ids as each vendor would mint them
CHAT_CALL_IDS = ("call_Wx7pQ1", "call_Tm3kZ2")
RESP_CALL_IDS = ("call_Rw8fH3", "call_Rt9gJ4")
RESP_ITEM_IDS = ("fc_68a1w", "fc_68a2t")
ANTHROPIC_TOOL_IDS = ("toolu_01WeatherXyZ", "toolu_02TimeAbC")

THINKING_CHUNKS = ("The user wants a greeting.", " I will say hi.")
THINKING = "".join(THINKING_CHUNKS)
# Signatures and encrypted reasoning are opaque base64-ish blobs; '+', '/' and '=' must
# survive every hop untouched.
ANTHROPIC_SIGNATURE = "EqQBCkYIBxgCKkB+fake/Signature0123456789abcdefghijklmnopqrstuvwxyz+/=="
RESPONSE_ID = "resp_68a0fake01"
RESP_REASONING_ID = "rs_68a0fake"
ENCRYPTED_REASONING = "gAAAAABo-fakeEncrypted_Reasoning+Blob/0123456789=="
THINK_ANSWER_CHUNKS = ("Hi", " there!")
THINK_ANSWER = "".join(THINK_ANSWER_CHUNKS)

PARTIAL = "Partial answer"
TRUNCATED_CHUNKS = ("The answer is long and", " gets cut")
TRUNCATED = "".join(TRUNCATED_CHUNKS)
SLOW_TICK = "tick "
SLOW_TICKS = 200
SLOW_INTERVAL = 0.05

PATCH_TOOL = "apply_patch"
PATCH_CHUNKS = ("*** Begin Patch\n*** Add File: hello.txt\n", '+say "hi"\n*** End Patch\n')
PATCH = "".join(PATCH_CHUNKS)
CUSTOM_IDS = {"chat": "call_Cp5xq", "responses": "call_Rc6yw", "anthropic": "toolu_03PatchQ"}
RESP_CUSTOM_ITEM_ID = "ctc_68a3"

COUNT_TOKENS = 4242

#: the image every vision scenario sends: a 1x1 red PNG
IMAGE_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
IMAGE_PNG_B64 = base64.b64encode(IMAGE_PNG).decode()


def image_note(data: bytes | None = None, url: str | None = None) -> str:
    """How a fake describes one image it received (inline bytes, or a URL it was given)."""
    if data is not None:
        return f"an image of {len(data)} bytes (sha256 {hashlib.sha256(data).hexdigest()[:12]})"
    return f"an image at {url}"


def image_answer(notes: list[str]) -> str:
    return "I see " + ("; ".join(notes) if notes else "no image") + "."


def _url_note(url: Any) -> str:
    if isinstance(url, str) and url.startswith("data:"):
        return image_note(data=base64.b64decode(url.partition(",")[2]))
    return image_note(url=url)


def _image_notes(api: str, body: dict[str, Any]) -> list[str]:
    """Every image of every user turn (Chat ``image_url`` parts, whose value may be a string
    for Mistral; Responses ``input_image`` parts)."""
    notes: list[str] = []
    items = body.get("input") if api == "responses" else body.get("messages")
    for m in items if isinstance(items, list) else ():
        content = m.get("content") if isinstance(m, dict) else None
        for p in content if isinstance(content, list) else ():
            if not isinstance(p, dict):
                continue
            if p.get("type") == "image_url":
                img = p.get("image_url")
                notes.append(_url_note(img.get("url") if isinstance(img, dict) else img))
            elif p.get("type") == "input_image":
                notes.append(_url_note(p.get("image_url")))
    return notes
RETRY_AFTER = "7"

#: usage each vendor reports for the ``text`` scenario
CHAT_USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18,
              "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                            "accepted_prediction_tokens": 0,
                                            "rejected_prediction_tokens": 0}}
RESP_USAGE = {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0},
              "output_tokens": 8, "output_tokens_details": {"reasoning_tokens": 0},
              "total_tokens": 20}
#: Anthropic: input_tokens excludes the 100 cached tokens (prompt total = 113);
#: output_tokens is cumulative (message_start says 1, message_delta says 9).
ANTHROPIC_INPUT, ANTHROPIC_CACHE_READ, ANTHROPIC_OUTPUT = 13, 100, 9

_SCENARIO = re.compile(r"scenario:([a-z0-9_]+)")

#: yielded by a frame generator: drop the connection there (a stream cut mid-way)
CUT = b"<cut the connection here>"
#: a frame whose JSON is cut short (the ``malformed`` scenario)
MALFORMED_DATA = b'data: {"id":"chatcmpl-fake02","choices":[{"index":0,"delta":{"content":\n\n'
MALFORMED_EVENT = (b'event: response.output_text.delta\n'
                   b'data: {"type":"response.output_text.delta","delta":\n\n')


def _j(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def data_frame(obj: Any) -> bytes:
    """An OpenAI Chat frame: ``data:`` only."""
    return f"data: {_j(obj)}\n\n".encode()


def event_frame(name: str, obj: Any) -> bytes:
    """An ``event:`` + ``data:`` frame (Responses, Anthropic)."""
    return f"event: {name}\ndata: {_j(obj)}\n\n".encode()


# --- request recording -----------------------------------------------------------------------


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    raw: bytes
    body: Any
    api: str
    scenario: str = ""
    stream: bool = False
    started: float = field(default_factory=time.monotonic)
    status: int | None = None
    completed: bool = False
    """The fake wrote its whole answer."""
    closed_early: bool = False
    """The client went away before the answer was finished."""
    closed_at: float | None = None
    """``time.monotonic()`` when the fake noticed the client had gone."""
    finished: threading.Event = field(default_factory=threading.Event, repr=False)

    def wait(self, timeout: float = 15.0) -> bool:
        """Block until the handler is done (answered fully or saw the client leave)."""
        return self.finished.wait(timeout)

    def json_text(self) -> str:
        return self.raw.decode("utf-8", "replace")


# --- helpers to read what a client sent -------------------------------------------------------


def _text_of(content: Any, kinds: Iterable[str] = ("text", "input_text")) -> str:
    if isinstance(content, str):
        return content
    out: list[str] = []
    if isinstance(content, list):
        for p in content:
            if isinstance(p, dict) and p.get("type") in kinds and isinstance(p.get("text"), str):
                out.append(p["text"])
    return "\n".join(out)


def _user_texts(api: str, body: dict[str, Any]) -> list[str]:
    if api == "responses":
        inp = body.get("input")
        if isinstance(inp, str):
            return [inp]
        items = inp if isinstance(inp, list) else []
        return [_text_of(it.get("content")) for it in items
                if isinstance(it, dict) and it.get("role") == "user"
                and it.get("type", "message") == "message"]
    msgs = body.get("messages")
    msgs = msgs if isinstance(msgs, list) else []
    return [_text_of(m.get("content")) for m in msgs
            if isinstance(m, dict) and m.get("role") == "user"]


def _scenario(api: str, body: Any) -> str:
    if not isinstance(body, dict):
        return "text"
    for text in reversed(_user_texts(api, body)):
        m = _SCENARIO.search(text)
        if m:
            return m.group(1)
    return "text"


def _has_tool_results(api: str, body: dict[str, Any]) -> bool:
    if api == "chat":
        return any(isinstance(m, dict) and m.get("role") == "tool"
                   for m in body.get("messages") or [])
    if api == "responses":
        inp = body.get("input")
        return isinstance(inp, list) and any(
            isinstance(it, dict)
            and it.get("type") in ("function_call_output", "custom_tool_call_output")
            for it in inp)
    for m in body.get("messages") or []:
        c = m.get("content") if isinstance(m, dict) else None
        if isinstance(c, list) and any(isinstance(b, dict) and b.get("type") == "tool_result"
                                       for b in c):
            return True
    return False


def _custom_declared(api: str, body: dict[str, Any]) -> bool:
    """Did the request declare ``apply_patch`` as a native custom tool?"""
    for t in body.get("tools") or []:
        if not isinstance(t, dict) or t.get("type") != "custom":
            continue
        name = (t.get("custom") or {}).get("name") if api == "chat" else t.get("name")
        if name == PATCH_TOOL:
            return True
    return False


class _Reject(Exception):
    status = 400
    code: str | None = None

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class _NotFound(_Reject):
    status = 404
    code = "previous_response_not_found"


# --- vendor validation (the rules real APIs enforce with a 400) ------------------------------


def _validate_chat(body: Any) -> None:
    if not isinstance(body, dict):
        raise _Reject("We could not parse the JSON body of your request.")
    if not isinstance(body.get("model"), str):
        raise _Reject("you must provide a model parameter", "model")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise _Reject("Missing required parameter: 'messages'.", "messages")
    if "stream_options" in body and not body.get("stream"):
        raise _Reject("The 'stream_options' parameter is only allowed when 'stream' is "
                      "enabled.", "stream_options")
    pending: set[str] = set()
    for i, m in enumerate(msgs):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("system", "developer", "user", "assistant", "tool", "function"):
            raise _Reject(f"Invalid value: '{role}'. Supported values are: 'system', "
                          "'assistant', 'user', 'function', 'tool', and 'developer'.",
                          f"messages[{i}].role")
        if role == "tool":
            tid = m.get("tool_call_id")
            if tid not in pending:
                raise _Reject("Invalid parameter: messages with role 'tool' must be a response "
                              "to a preceeding message with 'tool_calls'.",
                              f"messages.[{i}].role")
            pending.discard(tid)
            continue
        if pending:
            raise _Reject("An assistant message with 'tool_calls' must be followed by tool "
                          "messages responding to each 'tool_call_id'. The following "
                          f"tool_call_ids did not have response messages: {sorted(pending)}",
                          f"messages.[{i}].role")
        if role == "assistant":
            for tc in m.get("tool_calls") or []:
                if tc.get("type") == "custom":
                    if not isinstance((tc.get("custom") or {}).get("input"), str):
                        raise _Reject("Invalid type for tool_calls.custom.input: expected a "
                                      "string.", f"messages.[{i}].tool_calls")
                    pending.add(tc.get("id"))
                    continue
                fn = tc.get("function") or {}
                if not isinstance(fn.get("arguments"), str):
                    raise _Reject("Invalid type for tool_calls.function.arguments: expected a "
                                  "string.", f"messages.[{i}].tool_calls")
                pending.add(tc.get("id"))


def _validate_responses(body: Any) -> None:
    if not isinstance(body, dict):
        raise _Reject("We could not parse the JSON body of your request.")
    if not isinstance(body.get("model"), str):
        raise _Reject("Missing required parameter: 'model'.", "model")
    inp = body.get("input")
    if not isinstance(inp, (str, list)):
        raise _Reject("Missing required parameter: 'input'.", "input")
    prev = body.get("previous_response_id")
    if prev is not None and prev != RESPONSE_ID:
        raise _NotFound(f"Previous response with id '{prev}' not found.",
                        "previous_response_id")
    if isinstance(inp, list):
        calls: set[str] = set()
        for i, it in enumerate(inp):
            if not isinstance(it, dict):
                raise _Reject("Invalid input item.", f"input[{i}]")
            t = it.get("type", "message")
            if t == "function_call":
                if not isinstance(it.get("arguments"), str) or not it.get("call_id"):
                    raise _Reject("Invalid function_call item.", f"input[{i}]")
                calls.add(it["call_id"])
            elif t == "custom_tool_call":
                if not isinstance(it.get("input"), str) or not it.get("call_id"):
                    raise _Reject("Invalid custom_tool_call item.", f"input[{i}]")
                calls.add(it["call_id"])
            elif t in ("function_call_output", "custom_tool_call_output"):
                if it.get("call_id") not in calls and not body.get("previous_response_id"):
                    raise _Reject("No tool call found for function call output with call_id "
                                  f"{it.get('call_id')}.", "input")
            elif t == "message":
                if it.get("role") not in ("user", "assistant", "system", "developer"):
                    raise _Reject(f"Invalid value: '{it.get('role')}'.", f"input[{i}].role")
            elif t == "reasoning" and not it.get("encrypted_content") \
                    and body.get("store") is False:
                raise _Reject(f"Item with id '{it.get('id')}' not found. Items are not "
                                  "persisted when `store` is set to false.", f"input[{i}]")


def _validate_anthropic(body: Any, *, count_tokens: bool = False) -> None:
    if not isinstance(body, dict):
        raise _Reject("Request body must be a JSON object")
    if not isinstance(body.get("model"), str):
        raise _Reject("model: Field required")
    if count_tokens:
        allowed = {"model", "messages", "system", "tools", "tool_choice", "thinking",
                   "output_config", "cache_control", "context_management", "mcp_servers"}
        extra = sorted(set(body) - allowed)
        if extra:
            raise _Reject(f"{extra[0]}: Extra inputs are not permitted")
    else:
        mt = body.get("max_tokens")
        if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
            raise _Reject("max_tokens: Field required")
        th = body.get("thinking")
        if isinstance(th, dict) and th.get("type") == "enabled":
            b = th.get("budget_tokens")
            if not isinstance(b, int) or b < 1024:
                raise _Reject("thinking.enabled.budget_tokens: Input should be greater than "
                              "or equal to 1024")
            if b >= mt:
                raise _Reject("`max_tokens` must be greater than `thinking.budget_tokens`.")
        t = body.get("temperature")
        if t is not None and not (0 <= t <= 1):
            raise _Reject("temperature: Input should be less than or equal to 1")
    sysv = body.get("system")
    if sysv is not None and not isinstance(sysv, (str, list)):
        raise _Reject("system: Input should be a valid string or list")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise _Reject("messages: Field required")
    prev_tool_ids: set[str] = set()
    for i, m in enumerate(msgs):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("user", "assistant"):
            raise _Reject(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = m.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list):
            raise _Reject(f"messages.{i}.content: Input should be a valid list")
        if role == "user":
            results = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
            if prev_tool_ids:
                n = len(results)
                if any(b.get("type") != "tool_result" for b in blocks[:n]) or \
                        set(results) != prev_tool_ids:
                    raise _Reject(
                        f"messages.{i}.content: `tool_use` ids were found without "
                        "`tool_result` blocks immediately after: "
                        f"{', '.join(sorted(prev_tool_ids - set(results)))}. Each `tool_use` "
                        "block must have a corresponding `tool_result` block in the next "
                        "message, and tool_result blocks must come first.")
            elif results:
                raise _Reject(f"messages.{i}.content.0: unexpected `tool_use_id` found in "
                              "`tool_result` blocks: each `tool_result` block must have a "
                              "corresponding `tool_use` block in the previous message.")
            prev_tool_ids = set()
        else:
            if prev_tool_ids:
                raise _Reject(f"messages.{i}: tool_use ids without tool_result blocks")
            for b in blocks:
                if b.get("type") == "tool_use":
                    if not isinstance(b.get("input"), dict):
                        raise _Reject(f"messages.{i}.content: tool_use.input: Input should "
                                      "be a valid dictionary")
                    prev_tool_ids.add(b.get("id"))
                if b.get("type") == "thinking" and not b.get("signature"):
                    raise _Reject(f"messages.{i}.content: thinking.signature: Field required")
    if prev_tool_ids:
        raise _Reject("the last message has tool_use blocks without tool_result answers")


# --- the server ------------------------------------------------------------------------------


class FakeUpstream(ThreadedServer):
    """See the module docstring. Use as a context manager, or ``start()`` / ``stop()``.
    ``url`` is the Anthropic base URL; the OpenAI base is ``url + "/v1"``."""

    handler_cancellation = True

    def __init__(self, *, openai_key: str = OPENAI_KEY,
                 anthropic_key: str = ANTHROPIC_KEY) -> None:
        super().__init__()
        self.openai_key = openai_key
        self.anthropic_key = anthropic_key
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()

    def add_routes(self, app: web.Application) -> None:
        """The vendor routes (vendor fakes built on this one add or replace theirs), then
        a catch-all for unknown paths."""
        self.vendor_routes(app)
        app.router.add_route("*", "/{tail:.*}", self._unknown)

    def vendor_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)

    # --- what tests read ----------------------------------------------------------------

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def find(self, marker: str, path: str | None = None) -> list[Recorded]:
        """Requests whose raw body contains ``marker`` (optionally only on ``path``)."""
        needle = marker.encode()
        with self._lock:
            return [r for r in self.requests
                    if needle in r.raw and (path is None or r.path == path)]

    def one(self, marker: str, path: str | None = None) -> Recorded:
        hits = self.find(marker, path)
        assert len(hits) == 1, f"expected one upstream request with {marker!r}, got {len(hits)}"
        return hits[0]

    # --- plumbing -----------------------------------------------------------------------

    async def _record(self, request: web.Request, api: str) -> Recorded:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        rec = Recorded(method=request.method, path=request.path, query=request.query_string,
                       headers={k.lower(): v for k, v in request.headers.items()},
                       raw=raw, body=body, api=api)
        rec.scenario = _scenario(api, body)
        rec.stream = bool(isinstance(body, dict) and body.get("stream"))
        with self._lock:
            self.requests.append(rec)
        return rec

    @staticmethod
    def _done(rec: Recorded, resp: web.StreamResponse) -> web.StreamResponse:
        rec.status = resp.status
        rec.completed = True
        rec.finished.set()
        return resp

    @staticmethod
    def _gone(rec: Recorded) -> None:
        if not rec.completed and rec.closed_at is None:
            rec.closed_at = time.monotonic()
            rec.closed_early = True
        rec.finished.set()

    async def _sse(self, request: web.Request, rec: Recorded,
                   frames: AsyncIterator[bytes] | Iterable[bytes]) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={
            "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache",
            "x-request-id": "req_fake_stream"})
        rec.status = 200
        try:
            await resp.prepare(request)
            if isinstance(frames, AsyncIterator):
                async for f in frames:
                    if f is CUT:
                        return self._cut(request, rec, resp)
                    await resp.write(f)
            else:
                for f in frames:
                    if f is CUT:
                        return self._cut(request, rec, resp)
                    await resp.write(f)
            await resp.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            self._gone(rec)
            raise
        return self._done(rec, resp)

    @staticmethod
    def _cut(request: web.Request, rec: Recorded, resp: web.StreamResponse) -> web.StreamResponse:
        """Drop the connection in the middle of a body (no terminal chunk)."""
        rec.status = resp.status
        rec.finished.set()
        if request.transport is not None:
            request.transport.abort()
        return resp

    async def _broken_json(self, request: web.Request, rec: Recorded,
                           partial: bytes) -> web.StreamResponse:
        """Non-stream ``cut``: half a JSON body, then the connection drops; ``malformed``:
        a 200 whose body is not JSON."""
        if rec.scenario == "malformed":
            resp = web.Response(status=200, body=partial, content_type="application/json")
            return self._done(rec, resp)
        out = web.StreamResponse(status=200, headers={"content-type": "application/json",
                                                      "content-length": str(len(partial) * 2)})
        await out.prepare(request)
        await out.write(partial)
        return self._cut(request, rec, out)

    async def _slow_json(self, rec: Recorded, payload: dict[str, Any]) -> web.Response:
        """A non-streamed answer that takes ~10 s to come."""
        try:
            for _ in range(SLOW_TICKS):
                await asyncio.sleep(SLOW_INTERVAL)
        except asyncio.CancelledError:
            self._gone(rec)
            raise
        return self._json(rec, payload)

    def _json(self, rec: Recorded, payload: Any, status: int = 200,
              headers: dict[str, str] | None = None) -> web.Response:
        h = {"x-request-id": "req_fake_json", "request-id": "req_fake_json"}
        h.update(headers or {})
        resp = web.Response(status=status, text=_j(payload), content_type="application/json",
                            headers=h)
        return self._done(rec, resp)  # type: ignore[return-value]

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request, "unknown")
        return self._json(rec, {"error": {"message": f"Unknown request URL: {request.method} "
                                                     f"{request.path}.",
                                          "type": "invalid_request_error", "param": None,
                                          "code": "unknown_url"}}, 404)

    # --- OpenAI shared ------------------------------------------------------------------

    @staticmethod
    def _openai_error(message: str, type_: str, code: str | None,
                      param: str | None = None) -> dict[str, Any]:
        return {"error": {"message": message, "type": type_, "param": param, "code": code}}

    def _openai_auth(self, rec: Recorded) -> web.Response | None:
        auth = rec.headers.get("authorization", "")
        if auth == f"Bearer {self.openai_key}":
            return None
        return self._json(rec, self._openai_error(
            "Incorrect API key provided: sk-****. You can find your API key at "
            "https://platform.openai.com/account/api-keys.", "invalid_request_error",
            "invalid_api_key"), 401)

    def _openai_http_error(self, rec: Recorded) -> web.Response | None:
        if rec.scenario == "error429":
            return self._json(rec, self._openai_error(
                "Rate limit reached for gpt-fake in organization org-fake on requests per min "
                "(RPM): Limit 3, Used 3, Requested 1. Please try again in 7s.", "requests",
                "rate_limit_exceeded"), 429,
                {"retry-after": RETRY_AFTER, "x-ratelimit-remaining-requests": "0",
                 "x-ratelimit-reset-requests": "7s"})
        if rec.scenario == "error400":
            return self._json(rec, self._openai_error(
                "This model's maximum context length is 128000 tokens. However, your messages "
                "resulted in 130210 tokens. Please reduce the length of the messages.",
                "invalid_request_error", "context_length_exceeded", "messages"), 400)
        if rec.scenario == "overloaded":
            return self._json(rec, self._openai_error(
                "The engine is currently overloaded, please try again later.", "server_error",
                None), 503)
        if rec.scenario == "error403":
            return self._json(rec, self._openai_error(
                "Project `proj_fake` does not have access to model `gpt-fake`",
                "invalid_request_error", "model_not_found"), 403)
        if rec.scenario == "error404":
            return self._json(rec, self._openai_error(
                "The model `gpt-fake` does not exist or you do not have access to it.",
                "invalid_request_error", "model_not_found"), 404)
        if rec.scenario == "error413":
            resp = web.Response(status=413, content_type="text/html", text=(
                "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n"
                "<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n"
                "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"))
            return self._done(rec, resp)  # type: ignore[return-value]
        if rec.scenario == "error500" or (rec.scenario == "midstream_error" and not rec.stream):
            return self._json(rec, self._openai_error(
                "The server had an error while processing your request. Sorry about that!",
                "server_error", None), 500)
        return None

    # --- OpenAI Chat Completions --------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request, "chat")
        denied = self._openai_auth(rec)
        if denied is not None:
            return denied
        try:
            _validate_chat(rec.body)
        except _Reject as e:
            return self._json(rec, self._openai_error(e.message, "invalid_request_error", None,
                                                      e.param), 400)
        failed = self._openai_http_error(rec)
        if failed is not None:
            return failed
        body: dict[str, Any] = rec.body
        scen = rec.scenario
        if scen in ("tools", "custom") and _has_tool_results("chat", body):
            scen = "followup"
        if not rec.stream:
            if scen == "slow":
                return await self._slow_json(rec, self._chat_json(body, SLOW_TICK * SLOW_TICKS))
            if scen in ("cut", "malformed"):
                return await self._broken_json(request, rec,
                                               _j(self._chat_completion(body, "text"))[:60].encode())
            return self._json(rec, self._chat_completion(body, scen))
        return await self._sse(request, rec, self._chat_frames(body, scen))

    @staticmethod
    def _chat_json(body: dict[str, Any], content: str | None, *, finish: str = "stop",
                   tool_calls: list[dict[str, Any]] | None = None,
                   usage: dict[str, Any] | None = None,
                   extra_message: dict[str, Any] | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None,
                                   "annotations": []}
        if tool_calls:
            message["tool_calls"] = tool_calls
        message.update(extra_message or {})
        return {"id": "chatcmpl-fake01", "object": "chat.completion", "created": 1741569952,
                "model": body["model"], "system_fingerprint": "fp_fake",
                "service_tier": "default",
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": finish}],
                "usage": usage or CHAT_USAGE}

    def _chat_completion(self, body: dict[str, Any], scen: str) -> dict[str, Any]:
        if scen in complete_model.SCENARIOS:
            message, finish = complete_model.chat_message(scen)
            return self._chat_json(body, message["content"], finish=finish,
                                   extra_message=message)
        if scen == "tools":
            return self._chat_json(body, PREAMBLE, finish="tool_calls", tool_calls=[
                {"id": CHAT_CALL_IDS[0], "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": CHAT_CALL_IDS[1], "type": "function",
                 "function": {"name": "get_time", "arguments": "{}"}}],
                usage={"prompt_tokens": 82, "completion_tokens": 31, "total_tokens": 113})
        if scen == "followup":
            return self._chat_json(body, FOLLOWUP)
        if scen == "custom":
            call = ({"id": CUSTOM_IDS["chat"], "type": "custom",
                     "custom": {"name": PATCH_TOOL, "input": PATCH}}
                    if _custom_declared("chat", body) else
                    {"id": CUSTOM_IDS["chat"], "type": "function",
                     "function": {"name": PATCH_TOOL, "arguments": _j({"input": PATCH})}})
            return self._chat_json(body, None, finish="tool_calls", tool_calls=[call])
        if scen == "truncated":
            return self._chat_json(body, TRUNCATED, finish="length")
        if scen == "thinking":
            return self._chat_json(body, THINK_ANSWER,
                                   extra_message={"reasoning_content": THINKING})
        if scen == "image":
            return self._chat_json(body, image_answer(_image_notes("chat", body)))
        return self._chat_json(body, TEXT)

    def _chat_frames(self, body: dict[str, Any], scen: str) -> AsyncIterator[bytes]:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        model = body["model"]

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            c: dict[str, Any] = {"id": "chatcmpl-fake02", "object": "chat.completion.chunk",
                                 "created": 1741569952, "model": model,
                                 "system_fingerprint": "fp_fake", "service_tier": "default",
                                 "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                              "finish_reason": finish}]}
            if include_usage:
                c["usage"] = None
            c["obfuscation"] = "aZ3"
            return data_frame(c)

        def usage_chunk(usage: dict[str, Any]) -> list[bytes]:
            if not include_usage:
                return []
            return [data_frame({"id": "chatcmpl-fake02", "object": "chat.completion.chunk",
                                "created": 1741569952, "model": model,
                                "system_fingerprint": "fp_fake", "choices": [],
                                "usage": usage, "obfuscation": "q1"})]

        role = chunk({"role": "assistant", "content": "", "refusal": None})
        done = b"data: [DONE]\n\n"

        async def gen() -> AsyncIterator[bytes]:
            if scen == "tools":
                frames = [
                    role,
                    chunk({"content": PREAMBLE}),
                    chunk({"tool_calls": [{"index": 0, "id": CHAT_CALL_IDS[0],
                                           "type": "function",
                                           "function": {"name": "get_weather",
                                                        "arguments": ""}}]}),
                    chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
                    chunk({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
                    chunk({"tool_calls": [{"index": 1, "id": CHAT_CALL_IDS[1],
                                           "type": "function",
                                           "function": {"name": "get_time",
                                                        "arguments": ""}}]}),
                    chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
                    chunk({}, "tool_calls"),
                    *usage_chunk({"prompt_tokens": 82, "completion_tokens": 31,
                                  "total_tokens": 113,
                                  "prompt_tokens_details": {"cached_tokens": 0},
                                  "completion_tokens_details": {"reasoning_tokens": 0}}),
                    done,
                ]
            elif scen == "thinking":
                frames = [role,
                          *(chunk({"reasoning_content": t}) for t in THINKING_CHUNKS),
                          *(chunk({"content": t}) for t in THINK_ANSWER_CHUNKS),
                          chunk({}, "stop"), *usage_chunk(CHAT_USAGE), done]
            elif scen == "midstream_error":
                for f in (role, chunk({"content": PARTIAL})):
                    yield f
                await asyncio.sleep(0.02)
                yield data_frame(self._openai_error(
                    "The server had an error while processing your request. Sorry about that!",
                    "server_error", None))
                return
            elif scen == "cut":
                frames = [role, chunk({"content": PARTIAL}), CUT]
            elif scen == "malformed":
                frames = [role, chunk({"content": PARTIAL}), MALFORMED_DATA, chunk({}, "stop"),
                          *usage_chunk(CHAT_USAGE), done]
            elif scen == "slow":
                yield role
                for _ in range(SLOW_TICKS):
                    await asyncio.sleep(SLOW_INTERVAL)
                    yield chunk({"content": SLOW_TICK})
                yield chunk({}, "stop")
                for f in usage_chunk(CHAT_USAGE):
                    yield f
                yield done
                return
            elif scen == "custom":
                cid = CUSTOM_IDS["chat"]
                if _custom_declared("chat", body):
                    # openai-chat.md "Streaming": like function calls, with ``custom``
                    # in place of ``function`` (id/name first, then input fragments).
                    calls = [{"index": 0, "id": cid, "type": "custom",
                              "custom": {"name": PATCH_TOOL, "input": ""}},
                             *({"index": 0, "custom": {"input": p}} for p in PATCH_CHUNKS)]
                else:
                    args = _j({"input": PATCH})
                    calls = [{"index": 0, "id": cid, "type": "function",
                              "function": {"name": PATCH_TOOL, "arguments": ""}},
                             {"index": 0, "function": {"arguments": args[:20]}},
                             {"index": 0, "function": {"arguments": args[20:]}}]
                frames = [role, *(chunk({"tool_calls": [c]}) for c in calls),
                          chunk({}, "tool_calls"), *usage_chunk(CHAT_USAGE), done]
            elif scen in complete_model.SCENARIOS:
                deltas, finish = complete_model.chat_deltas(scen)
                frames = [role, *(chunk(d) for d in deltas), chunk({}, finish),
                          *usage_chunk(CHAT_USAGE), done]
            elif scen == "truncated":
                frames = [role, *(chunk({"content": t}) for t in TRUNCATED_CHUNKS),
                          chunk({}, "length"), *usage_chunk(CHAT_USAGE), done]
            else:
                chunks = FOLLOWUP_CHUNKS if scen == "followup" else \
                    (image_answer(_image_notes("chat", body)),) if scen == "image" else TEXT_CHUNKS
                frames = [role, *(chunk({"content": t}) for t in chunks), chunk({}, "stop"),
                          *usage_chunk(CHAT_USAGE), done]
            for f in frames:
                yield f

        return gen()

    # --- OpenAI Responses ---------------------------------------------------------------

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request, "responses")
        denied = self._openai_auth(rec)
        if denied is not None:
            return denied
        try:
            _validate_responses(rec.body)
        except _Reject as e:
            return self._json(rec, self._openai_error(e.message, "invalid_request_error",
                                                      e.code, e.param), e.status)
        failed = self._openai_http_error(rec)
        if failed is not None:
            return failed
        body: dict[str, Any] = rec.body
        scen = rec.scenario
        if scen in ("tools", "custom") and _has_tool_results("responses", body):
            scen = "followup"
        if not rec.stream:
            if scen == "slow":
                msg = self._resp_message("msg_slow", SLOW_TICK * SLOW_TICKS)
                return await self._slow_json(rec, self._resp_object(body, "completed", [msg],
                                                                    RESP_USAGE))
            if scen == "truncated":
                return self._json(rec, self._resp_truncated(body))
            if scen in ("cut", "malformed"):
                output, usage = self._resp_output(body, "text")
                full = _j(self._resp_object(body, "completed", output, usage))
                return await self._broken_json(request, rec, full[:60].encode())
            output, usage = self._resp_output(body, scen)
            return self._json(rec, self._resp_object(body, "completed", output, usage))
        return await self._sse(request, rec, self._resp_frames(body, scen))

    @staticmethod
    def _resp_object(body: dict[str, Any], status: str, output: list[dict[str, Any]],
                     usage: dict[str, Any] | None,
                     error: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"id": RESPONSE_ID, "object": "response", "created_at": 1741476542,
                "status": status, "background": False, "error": error,
                "incomplete_details": None, "instructions": body.get("instructions"),
                "max_output_tokens": body.get("max_output_tokens"),
                "model": body["model"], "output": output,
                "parallel_tool_calls": body.get("parallel_tool_calls", True),
                "previous_response_id": body.get("previous_response_id"),
                "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"),
                              "summary": (body.get("reasoning") or {}).get("summary")},
                "service_tier": "default", "store": body.get("store", True),
                "temperature": body.get("temperature", 1.0),
                "text": {"format": {"type": "text"}, "verbosity": "medium"},
                "tool_choice": body.get("tool_choice", "auto"),
                "tools": body.get("tools", []), "top_p": body.get("top_p", 1.0),
                "truncation": "disabled", "usage": usage, "user": None,
                "metadata": body.get("metadata") or {}}

    @staticmethod
    def _resp_custom(body: dict[str, Any], value: str,
                     status: str = "completed") -> dict[str, Any]:
        cid = CUSTOM_IDS["responses"]
        if _custom_declared("responses", body):
            return {"id": RESP_CUSTOM_ITEM_ID, "type": "custom_tool_call", "status": status,
                    "call_id": cid, "name": PATCH_TOOL, "input": value}
        return {"id": RESP_CUSTOM_ITEM_ID, "type": "function_call", "status": status,
                "call_id": cid, "name": PATCH_TOOL,
                "arguments": value if status == "in_progress" else _j({"input": value})}

    def _resp_truncated(self, body: dict[str, Any]) -> dict[str, Any]:
        r = self._resp_object(body, "incomplete",
                              [self._resp_message("msg_68a0cut", TRUNCATED, "incomplete")],
                              RESP_USAGE)
        r["incomplete_details"] = {"reason": "max_output_tokens"}
        return r

    @staticmethod
    def _resp_message(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
        return {"id": item_id, "type": "message", "status": status, "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": [],
                             "logprobs": []}]}

    @staticmethod
    def _resp_call(i: int, name: str, args: str, status: str = "completed") -> dict[str, Any]:
        return {"id": RESP_ITEM_IDS[i], "type": "function_call", "status": status,
                "arguments": args, "call_id": RESP_CALL_IDS[i], "name": name}

    @staticmethod
    def _resp_reasoning(body: dict[str, Any], with_summary: bool = True) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": RESP_REASONING_ID, "type": "reasoning",
            "summary": [{"type": "summary_text", "text": THINKING}] if with_summary else []}
        if "reasoning.encrypted_content" in (body.get("include") or []):
            item["encrypted_content"] = ENCRYPTED_REASONING
        return item

    def _resp_output(self, body: dict[str, Any],
                     scen: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        if scen == "tools":
            return [self._resp_message("msg_68a0tools", PREAMBLE),
                    self._resp_call(0, "get_weather", "{\"city\":\"Paris\"}"),
                    self._resp_call(1, "get_time", "{}")], \
                {"input_tokens": 82, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": 31, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": 113}
        if scen == "followup":
            return [self._resp_message("msg_68a0follow", FOLLOWUP)], RESP_USAGE
        if scen in complete_model.SCENARIOS:
            return complete_model.responses_output(scen), RESP_USAGE
        if scen == "image":
            text = image_answer(_image_notes("responses", body))
            return [self._resp_message("msg_68a0image", text)], RESP_USAGE
        if scen == "custom":
            return [self._resp_custom(body, PATCH)], RESP_USAGE
        if scen == "thinking":
            return [self._resp_reasoning(body), self._resp_message("msg_68a0think",
                                                                   THINK_ANSWER)], \
                {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": 40, "output_tokens_details": {"reasoning_tokens": 32},
                 "total_tokens": 52}
        return [self._resp_message("msg_68a0text", TEXT)], RESP_USAGE

    def _resp_frames(self, body: dict[str, Any], scen: str) -> AsyncIterator[bytes]:
        seq = iter(range(1_000_000))

        def ev(type_: str, **fields: Any) -> bytes:
            return event_frame(type_, {"type": type_, "sequence_number": next(seq), **fields})

        def text_open(idx: int, item_id: str) -> list[bytes]:
            return [
                ev("response.output_item.added", output_index=idx,
                   item={"id": item_id, "type": "message", "status": "in_progress",
                         "role": "assistant", "content": []}),
                ev("response.content_part.added", item_id=item_id, output_index=idx,
                   content_index=0, part={"type": "output_text", "text": "",
                                          "annotations": [], "logprobs": []}),
            ]

        def text_delta(idx: int, item_id: str, delta: str) -> bytes:
            return ev("response.output_text.delta", item_id=item_id, output_index=idx,
                      content_index=0, delta=delta, logprobs=[])

        def text_close(idx: int, item_id: str, full: str) -> list[bytes]:
            return [
                ev("response.output_text.done", item_id=item_id, output_index=idx,
                   content_index=0, text=full, logprobs=[]),
                ev("response.content_part.done", item_id=item_id, output_index=idx,
                   content_index=0, part={"type": "output_text", "text": full,
                                          "annotations": [], "logprobs": []}),
                ev("response.output_item.done", output_index=idx,
                   item=self._resp_message(item_id, full)),
            ]

        def text_item(idx: int, item_id: str, chunks: Iterable[str]) -> list[bytes]:
            chunks = list(chunks)
            return [*text_open(idx, item_id), *(text_delta(idx, item_id, c) for c in chunks),
                    *text_close(idx, item_id, "".join(chunks))]

        def call_item(idx: int, i: int, name: str, pieces: list[str]) -> list[bytes]:
            item_id = RESP_ITEM_IDS[i]
            args = "".join(pieces)
            return [
                ev("response.output_item.added", output_index=idx,
                   item=self._resp_call(i, name, "", "in_progress")),
                *(ev("response.function_call_arguments.delta", item_id=item_id,
                     output_index=idx, delta=p) for p in pieces),
                ev("response.function_call_arguments.done", item_id=item_id,
                   output_index=idx, name=name, arguments=args),
                ev("response.output_item.done", output_index=idx,
                   item=self._resp_call(i, name, args)),
            ]

        def head() -> list[bytes]:
            start = self._resp_object(body, "in_progress", [], None)
            return [ev("response.created", response=start),
                    ev("response.in_progress", response=start)]

        def completed(output: list[dict[str, Any]], usage: dict[str, Any]) -> bytes:
            return ev("response.completed",
                      response=self._resp_object(body, "completed", output, usage))

        async def gen() -> AsyncIterator[bytes]:
            if scen == "tools":
                output, usage = self._resp_output(body, "tools")
                frames = [*head(), *text_item(0, "msg_68a0tools", [PREAMBLE]),
                          *call_item(1, 0, "get_weather", ["{\"city\":", "\"Paris\"}"]),
                          *call_item(2, 1, "get_time", ["{}"]),
                          completed(output, usage)]
            elif scen == "thinking":
                output, usage = self._resp_output(body, "thinking")
                rid = RESP_REASONING_ID
                frames = [
                    *head(),
                    ev("response.output_item.added", output_index=0,
                       item={"id": rid, "type": "reasoning", "summary": []}),
                    ev("response.reasoning_summary_part.added", item_id=rid, output_index=0,
                       summary_index=0, part={"type": "summary_text", "text": ""}),
                    *(ev("response.reasoning_summary_text.delta", item_id=rid, output_index=0,
                         summary_index=0, delta=t) for t in THINKING_CHUNKS),
                    ev("response.reasoning_summary_text.done", item_id=rid, output_index=0,
                       summary_index=0, text=THINKING),
                    ev("response.reasoning_summary_part.done", item_id=rid, output_index=0,
                       summary_index=0, part={"type": "summary_text", "text": THINKING}),
                    ev("response.output_item.done", output_index=0,
                       item=self._resp_reasoning(body)),
                    *text_item(1, "msg_68a0think", THINK_ANSWER_CHUNKS),
                    completed(output, usage),
                ]
            elif scen in ("cut", "malformed"):
                mid = "msg_68a0part"
                frames = [*head(), *text_open(0, mid), text_delta(0, mid, PARTIAL)]
                if scen == "cut":
                    frames.append(CUT)
                else:
                    # the Responses parser skips what it cannot read: the rest still counts
                    frames += [MALFORMED_EVENT, *text_close(0, mid, PARTIAL),
                               completed([self._resp_message(mid, PARTIAL)], RESP_USAGE)]
            elif scen == "midstream_error":
                mid = "msg_68a0part"
                for f in [*head(), *text_open(0, mid), text_delta(0, mid, PARTIAL)]:
                    yield f
                await asyncio.sleep(0.02)
                yield ev("response.failed", response=self._resp_object(
                    body, "failed", [self._resp_message(mid, PARTIAL, "incomplete")], None,
                    error={"code": "server_error",
                           "message": "The model produced an error while generating."}))
                return
            elif scen == "slow":
                sid = "msg_68a0slow"
                for f in [*head(), *text_open(0, sid)]:
                    yield f
                for _ in range(SLOW_TICKS):
                    await asyncio.sleep(SLOW_INTERVAL)
                    yield text_delta(0, sid, SLOW_TICK)
                full = SLOW_TICK * SLOW_TICKS
                for f in text_close(0, sid, full):
                    yield f
                yield completed([self._resp_message(sid, full)], RESP_USAGE)
                return
            elif scen == "custom":
                output, usage = self._resp_output(body, "custom")
                native = _custom_declared("responses", body)
                pieces = list(PATCH_CHUNKS) if native else \
                    [_j({"input": PATCH})[:20], _j({"input": PATCH})[20:]]
                kind = "custom_tool_call_input" if native else "function_call_arguments"
                done = {"input": PATCH} if native else \
                    {"name": PATCH_TOOL, "arguments": _j({"input": PATCH})}
                frames = [*head(),
                          ev("response.output_item.added", output_index=0,
                             item=self._resp_custom(body, "", "in_progress")),
                          *(ev(f"response.{kind}.delta", item_id=RESP_CUSTOM_ITEM_ID,
                               output_index=0, delta=p) for p in pieces),
                          ev(f"response.{kind}.done", item_id=RESP_CUSTOM_ITEM_ID,
                             output_index=0, **done),
                          ev("response.output_item.done", output_index=0, item=output[0]),
                          completed(output, usage)]
            elif scen in complete_model.SCENARIOS:
                output, usage = self._resp_output(body, scen)
                frames = [*head(),
                          *(ev(e["type"], **{k: v for k, v in e.items() if k != "type"})
                            for e in complete_model.responses_events(scen)),
                          completed(output, usage)]
            elif scen == "truncated":
                cid = "msg_68a0cut"
                frames = [*head(), *text_open(0, cid),
                          *(text_delta(0, cid, t) for t in TRUNCATED_CHUNKS),
                          ev("response.output_text.done", item_id=cid, output_index=0,
                             content_index=0, text=TRUNCATED, logprobs=[]),
                          ev("response.content_part.done", item_id=cid, output_index=0,
                             content_index=0, part={"type": "output_text", "text": TRUNCATED,
                                                    "annotations": [], "logprobs": []}),
                          ev("response.output_item.done", output_index=0,
                             item=self._resp_message(cid, TRUNCATED, "incomplete")),
                          ev("response.incomplete", response=self._resp_truncated(body))]
            else:
                output, usage = self._resp_output(body, scen)
                chunks = FOLLOWUP_CHUNKS if scen == "followup" else \
                    (output[0]["content"][0]["text"],) if scen == "image" else TEXT_CHUNKS
                frames = [*head(), *text_item(0, output[0]["id"], chunks),
                          completed(output, usage)]
            for f in frames:
                yield f

        return gen()

    # --- Anthropic Messages -------------------------------------------------------------

    @staticmethod
    def _anthropic_error(type_: str, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": type_, "message": message},
                "request_id": "req_011CfakeRequest"}

    def _anthropic_auth(self, rec: Recorded) -> web.Response | None:
        key = rec.headers.get("x-api-key")
        auth = rec.headers.get("authorization", "")
        ok = key == self.anthropic_key if key is not None else \
            auth == f"Bearer {self.anthropic_key}"
        if not ok:
            return self._json(rec, self._anthropic_error("authentication_error",
                                                         "invalid x-api-key"), 401)
        if not rec.headers.get("anthropic-version"):
            return self._json(rec, self._anthropic_error(
                "invalid_request_error", "anthropic-version: header is required"), 400)
        return None

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request, "anthropic")
        denied = self._anthropic_auth(rec)
        if denied is not None:
            return denied
        try:
            _validate_anthropic(rec.body, count_tokens=True)
        except _Reject as e:
            return self._json(rec, self._anthropic_error("invalid_request_error", e.message),
                              400)
        return self._json(rec, {"input_tokens": COUNT_TOKENS})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request, "anthropic")
        denied = self._anthropic_auth(rec)
        if denied is not None:
            return denied
        try:
            _validate_anthropic(rec.body)
        except _Reject as e:
            return self._json(rec, self._anthropic_error("invalid_request_error", e.message),
                              400)
        scen = rec.scenario
        if scen == "error429":
            return self._json(rec, self._anthropic_error(
                "rate_limit_error", "Number of request tokens has exceeded your per-minute "
                "rate limit"), 429, {"retry-after": RETRY_AFTER})
        if scen == "error400":
            return self._json(rec, self._anthropic_error(
                "invalid_request_error", "prompt is too long: 210345 tokens > 200000 maximum"),
                400)
        if scen == "overloaded":
            return self._json(rec, self._anthropic_error("overloaded_error", "Overloaded"), 529)
        if scen == "error500" or (scen == "midstream_error" and not rec.stream):
            return self._json(rec, self._anthropic_error("api_error", "Internal server error"),
                              500)
        body: dict[str, Any] = rec.body
        if scen in ("tools", "custom") and _has_tool_results("anthropic", body):
            scen = "followup"
        if not rec.stream:
            if scen == "slow":
                return await self._slow_json(rec, self._anthropic_message(
                    body, [{"type": "text", "text": SLOW_TICK * SLOW_TICKS}], "end_turn"))
            return self._json(rec, self._anthropic_complete(body, scen))
        return await self._sse(request, rec, self._anthropic_frames(body, scen))

    @staticmethod
    def _anthropic_usage(output: int) -> dict[str, Any]:
        return {"input_tokens": ANTHROPIC_INPUT, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": ANTHROPIC_CACHE_READ,
                "cache_creation": {"ephemeral_5m_input_tokens": 0,
                                   "ephemeral_1h_input_tokens": 0},
                "output_tokens": output, "server_tool_use": None, "service_tier": "standard"}

    def _anthropic_message(self, body: dict[str, Any], content: list[dict[str, Any]],
                           stop: str | None, output_tokens: int = ANTHROPIC_OUTPUT,
                           msg_id: str = "msg_01FakeJson") -> dict[str, Any]:
        return {"id": msg_id, "type": "message", "role": "assistant", "model": body["model"],
                "content": content, "stop_reason": stop, "stop_sequence": None,
                "usage": self._anthropic_usage(output_tokens)}

    def _anthropic_complete(self, body: dict[str, Any], scen: str) -> dict[str, Any]:
        if scen in complete_model.SCENARIOS:
            content, stop, extra = complete_model.anthropic_content(scen)
            return {**self._anthropic_message(body, content, stop), **extra}
        if scen == "tools":
            return self._anthropic_message(body, [
                {"type": "text", "text": PREAMBLE, "citations": None},
                {"type": "tool_use", "id": ANTHROPIC_TOOL_IDS[0], "name": "get_weather",
                 "input": {"city": "Paris"}},
                {"type": "tool_use", "id": ANTHROPIC_TOOL_IDS[1], "name": "get_time",
                 "input": {}}], "tool_use", 96)
        if scen == "thinking":
            return self._anthropic_message(body, [
                {"type": "thinking", "thinking": THINKING, "signature": ANTHROPIC_SIGNATURE},
                {"type": "text", "text": THINK_ANSWER, "citations": None}], "end_turn", 60)
        if scen == "custom":
            return self._anthropic_message(body, [
                {"type": "tool_use", "id": CUSTOM_IDS["anthropic"], "name": PATCH_TOOL,
                 "input": {"input": PATCH}}], "tool_use")
        if scen == "truncated":
            return self._anthropic_message(body, [{"type": "text", "text": TRUNCATED,
                                                   "citations": None}], "max_tokens")
        text = FOLLOWUP if scen == "followup" else TEXT
        return self._anthropic_message(body, [{"type": "text", "text": text,
                                               "citations": None}], "end_turn")

    def _anthropic_frames(self, body: dict[str, Any], scen: str) -> AsyncIterator[bytes]:
        def ev(name: str, **fields: Any) -> bytes:
            return event_frame(name, {"type": name, **fields})

        start = ev("message_start", message={
            **self._anthropic_message(body, [], None, 1, "msg_01FakeStream")})

        def block(index: int, cb: dict[str, Any], deltas: list[dict[str, Any]]) -> list[bytes]:
            return [ev("content_block_start", index=index, content_block=cb),
                    *(ev("content_block_delta", index=index, delta=d) for d in deltas),
                    ev("content_block_stop", index=index)]

        def text_block(index: int, chunks: Iterable[str]) -> list[bytes]:
            return block(index, {"type": "text", "text": ""},
                         [{"type": "text_delta", "text": c} for c in chunks])

        def end(stop: str, usage: dict[str, Any]) -> list[bytes]:
            return [ev("message_delta", delta={"stop_reason": stop, "stop_sequence": None},
                       usage=usage), ev("message_stop")]

        ping = ev("ping")

        async def gen() -> AsyncIterator[bytes]:
            if scen == "tools":
                frames = [
                    start, ping, *text_block(0, [PREAMBLE]),
                    *block(1, {"type": "tool_use", "id": ANTHROPIC_TOOL_IDS[0],
                               "name": "get_weather", "input": {}},
                           [{"type": "input_json_delta", "partial_json": ""},
                            {"type": "input_json_delta", "partial_json": "{\"city\": \"Pa"},
                            {"type": "input_json_delta", "partial_json": "ris\"}"}]),
                    # no deltas at all: the input is {}
                    *block(2, {"type": "tool_use", "id": ANTHROPIC_TOOL_IDS[1],
                               "name": "get_time", "input": {}}, []),
                    # cumulative usage, with the input side repeated (newer API versions)
                    *end("tool_use", {"input_tokens": ANTHROPIC_INPUT,
                                      "cache_creation_input_tokens": 0,
                                      "cache_read_input_tokens": ANTHROPIC_CACHE_READ,
                                      "output_tokens": 96}),
                ]
            elif scen == "thinking":
                frames = [
                    start,
                    *block(0, {"type": "thinking", "thinking": "", "signature": ""},
                           [*({"type": "thinking_delta", "thinking": t}
                              for t in THINKING_CHUNKS),
                            {"type": "signature_delta", "signature": ANTHROPIC_SIGNATURE}]),
                    ping,
                    *text_block(1, THINK_ANSWER_CHUNKS),
                    *end("end_turn", {"output_tokens": 60}),
                ]
            elif scen == "midstream_error":
                for f in (start, ev("content_block_start", index=0,
                                    content_block={"type": "text", "text": ""}),
                          ev("content_block_delta", index=0,
                             delta={"type": "text_delta", "text": PARTIAL})):
                    yield f
                await asyncio.sleep(0.02)
                yield ev("error", error={"type": "overloaded_error", "message": "Overloaded"})
                return
            elif scen == "slow":
                yield start
                yield ev("content_block_start", index=0,
                         content_block={"type": "text", "text": ""})
                for i in range(SLOW_TICKS):
                    await asyncio.sleep(SLOW_INTERVAL)
                    yield ev("content_block_delta", index=0,
                             delta={"type": "text_delta", "text": SLOW_TICK})
                    if i % 20 == 19:
                        yield ping
                yield ev("content_block_stop", index=0)
                for f in end("end_turn", {"output_tokens": SLOW_TICKS}):
                    yield f
                return
            elif scen == "custom":
                args = _j({"input": PATCH})
                frames = [start,
                          *block(0, {"type": "tool_use", "id": CUSTOM_IDS["anthropic"],
                                     "name": PATCH_TOOL, "input": {}},
                                 [{"type": "input_json_delta", "partial_json": args[i:i + 17]}
                                  for i in range(0, len(args), 17)]),
                          *end("tool_use", {"output_tokens": ANTHROPIC_OUTPUT})]
            elif scen in complete_model.SCENARIOS:
                _, stop, extra = complete_model.anthropic_content(scen)
                frames = [start]
                for i, (cb, deltas) in enumerate(complete_model.anthropic_blocks(scen)):
                    frames += block(i, cb, deltas)
                frames += [ev("message_delta", delta={"stop_reason": stop,
                                                      "stop_sequence": None, **extra},
                              usage={"output_tokens": ANTHROPIC_OUTPUT}), ev("message_stop")]
            elif scen == "truncated":
                frames = [start, *text_block(0, TRUNCATED_CHUNKS),
                          *end("max_tokens", {"output_tokens": ANTHROPIC_OUTPUT})]
            else:
                chunks = FOLLOWUP_CHUNKS if scen == "followup" else TEXT_CHUNKS
                frames = [start, ping, *text_block(0, chunks),
                          *end("end_turn", {"output_tokens": ANTHROPIC_OUTPUT})]
            for f in frames:
                yield f

        return gen()

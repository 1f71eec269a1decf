"""Mistral (La Plateforme): the OpenAI Chat dialect with Mistral's envelope.

Out (``prepare``): ``random_seed`` for ``seed``, ``max_tokens`` only, no ``stream_options``
/ ``logit_bias`` / ``user`` (every key outside Mistral's request schema is dropped: it
answers unknown keys with a 422), ``developer`` → ``system``, ``tool_choice`` required →
``any``, tool messages carry the tool ``name``, a trailing assistant message is sent as a
prefill (``prefix: true``), and tool call ids that do not match ``^[a-zA-Z0-9]{9}$`` are
rewritten.

The id rewrite is deterministic (a digest of the foreign id), so the same foreign id maps
to the same Mistral id on every turn with no server state, and an id coming back is
restored from the request's own history.

In (``parse_upstream_response`` / the stream parser): ``content`` given as a list of parts
(reasoning models: ``thinking`` parts, then ``text``) is split into reasoning and text
before the Chat parser sees it; rewritten ids are restored. Usage comes on the final chunk
unasked. Errors: ``{"object":"error","message",...}``, with schema violations (422) whose
``message`` is a ``{"detail": [...]}`` object.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

import msgspec

from ..core import (
    ChatRequest,
    ChatResponse,
    ContextLengthExceeded,
    DragomanError,
    InvalidRequest,
    StreamEvent,
    ToolCall,
    ToolResult,
    error_for_status,
)
from ..dialects.openai_chat import DIALECT as OPENAI_CHAT
from ..dialects.openai_chat import StreamParser as ChatStreamParser
from ..dialects.openai_chat import parse_error as chat_parse_error
from .base import HttpDialectProvider
from .registry import ProviderSpec

_decode = msgspec.json.Decoder().decode

# --- tool call ids --------------------------------------------------------------------------

_MISTRAL_ID = re.compile(r"[a-zA-Z0-9]{9}")
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SPACE = 62**9


def mistral_id(call_id: str) -> str:
    """A Mistral-valid id for ``call_id``: itself when valid, else 9 base-62 digits of its
    SHA-256 (the same foreign id always gets the same Mistral id)."""
    if _MISTRAL_ID.fullmatch(call_id):
        return call_id
    n = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big") % _SPACE
    out = []
    for _ in range(9):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(out)


def restore_map(req: ChatRequest) -> dict[str, str]:
    """Mistral id → the foreign id it stands for, for every rewritten id of ``req``."""
    out: dict[str, str] = {}
    for m in req.messages:
        for p in m.content:
            cid = p.id if isinstance(p, ToolCall) else p.call_id if isinstance(p, ToolResult) \
                else None
            if cid is not None and not _MISTRAL_ID.fullmatch(cid):
                out[mistral_id(cid)] = cid
    return out


# --- the request envelope -------------------------------------------------------------------

#: Mistral's chat-completion request schema (it refuses any other key)
_KEYS = frozenset({
    "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop",
    "random_seed", "metadata", "response_format", "tools", "tool_choice", "presence_penalty",
    "frequency_penalty", "n", "prediction", "parallel_tool_calls", "prompt_mode",
    "safe_prompt", "reasoning_effort",
})
_RENAMED = {"seed": "random_seed", "max_completion_tokens": "max_tokens"}


def _messages(messages: list[dict[str, Any]]) -> None:
    names: dict[str, str] = {}
    for m in messages:
        role = m.get("role")
        if role == "developer":
            m["role"] = "system"
        elif role == "assistant":
            for tc in m.get("tool_calls") or ():
                tc["id"] = mistral_id(tc["id"])
                fn = tc.get("function")
                if isinstance(fn, dict):
                    names[tc["id"]] = fn.get("name", "")
        elif role == "tool":
            cid = mistral_id(m["tool_call_id"])
            m["tool_call_id"] = cid
            if cid in names and "name" not in m:
                m["name"] = names[cid]
    if messages and messages[-1].get("role") == "assistant":
        # A trailing assistant turn is a prefill: Mistral wants it marked as one.
        messages[-1]["prefix"] = True


def _tool_choice(tc: Any) -> Any:
    if tc == "required":
        return "any"
    if isinstance(tc, dict):
        if tc.get("type") == "allowed_tools":
            mode = (tc.get("allowed_tools") or {}).get("mode")
            return "any" if mode == "required" else "auto"
        if tc.get("type") == "custom":
            return {"type": "function", "function": {"name": tc["custom"]["name"]}}
    return tc


def _custom_as_function(body: dict[str, Any]) -> None:
    """Mistral has no free-text (custom) tools: they become a function taking one string
    ``input`` (as toward Anthropic); calls in the history follow."""
    for i, t in enumerate(body.get("tools") or ()):
        if t.get("type") == "custom":
            c = t["custom"]
            fn = {"name": c["name"], "parameters": {
                "type": "object", "properties": {"input": {"type": "string"}},
                "required": ["input"]}}
            if c.get("description"):
                fn["description"] = c["description"]
            body["tools"][i] = {"type": "function", "function": fn}
    for m in body["messages"]:
        for tc in m.get("tool_calls") or ():
            if tc.get("type") == "custom":
                c = tc.pop("custom")
                tc["type"] = "function"
                tc["function"] = {"name": c["name"],
                                  "arguments": msgspec.json.encode({"input": c["input"]}).decode()}


def mistral_body(body: dict[str, Any]) -> dict[str, Any]:
    """A rendered Chat body → Mistral's (in place where possible)."""
    out = {_RENAMED.get(k, k): v for k, v in body.items()}
    for k in [k for k in out if k not in _KEYS]:
        del out[k]
    _custom_as_function(out)
    _messages(out["messages"])
    if "tool_choice" in out:
        out["tool_choice"] = _tool_choice(out["tool_choice"])
    return out


# --- the answer ---------------------------------------------------------------------------


def _split_content(msg: dict[str, Any]) -> None:
    """A content list (``thinking`` and ``text`` parts) → ``reasoning_content`` + text."""
    content = msg.get("content")
    if not isinstance(content, list):
        return
    texts: list[str] = []
    thinking: list[str] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "thinking":
            inner = part.get("thinking")
            for t in inner if isinstance(inner, list) else ():
                if isinstance(t, dict) and isinstance(t.get("text"), str):
                    thinking.append(t["text"])
        elif isinstance(part.get("text"), str):
            texts.append(part["text"])
    msg["content"] = "".join(texts)
    if thinking:
        msg["reasoning_content"] = "".join(thinking)


class Inbound:
    """What turning Mistral's answers back needs from the request: the ids to restore and
    the custom tools emulated as functions."""

    __slots__ = ("custom", "restore")

    def __init__(self, req: ChatRequest) -> None:
        self.restore = restore_map(req)
        self.custom = req.custom_tool_names()

    def _calls(self, msg: dict[str, Any]) -> None:
        for tc in msg.get("tool_calls") or ():
            if not isinstance(tc, dict):
                continue
            cid = tc.get("id")
            if isinstance(cid, str) and cid in self.restore:
                tc["id"] = self.restore[cid]
            fn = tc.get("function")
            if self.custom and isinstance(fn, dict) and fn.get("name") in self.custom:
                # Mistral sends a call whole (arguments complete in one fragment).
                args = fn.get("arguments")
                try:
                    obj = _decode(args) if isinstance(args, str) else args
                except msgspec.DecodeError:
                    continue
                if isinstance(obj, dict) and isinstance(obj.get("input"), str):
                    del tc["function"]
                    tc["type"] = "custom"
                    tc["custom"] = {"name": fn["name"], "input": obj["input"]}

    def normalize(self, obj: Any, key: str) -> None:
        """Rewrite a response (``key="message"``) or chunk (``key="delta"``) for the Chat
        parser, in place."""
        if not isinstance(obj, dict):
            return
        if obj.get("object") == "error" and "error" not in obj:
            # An in-band failure, Mistral-style: the Chat parser reads ``error``.
            obj["error"] = {k: obj.get(k) for k in ("message", "type", "code")}
            return
        for choice in obj.get("choices") or ():
            msg = choice.get(key) if isinstance(choice, dict) else None
            if isinstance(msg, dict):
                _split_content(msg)
                if "tool_calls" in msg and (self.restore or self.custom):
                    self._calls(msg)


class MistralStreamParser:
    """The Chat stream parser, fed chunks normalized by ``Inbound``."""

    __slots__ = ("_inbound", "_inner")

    def __init__(self, inbound: Inbound) -> None:
        self._inner = ChatStreamParser()
        self._inbound = inbound

    def feed(self, event: str | None, data: str) -> list[StreamEvent]:
        if not data.startswith("{"):
            return self._inner.feed(event, data)  # [DONE], blank, or broken: its call
        try:
            obj = _decode(data)
        except msgspec.DecodeError:
            return self._inner.feed(event, data)
        self._inbound.normalize(obj, "delta")
        return self._inner.feed_chunk(obj)

    def close(self) -> list[StreamEvent]:
        return self._inner.close()


def _detail_message(detail: Any) -> str | None:
    """``[{"loc": ["body", "x"], "msg": "..."}]`` → ``"body.x: ..."`` (a 422's message)."""
    if not isinstance(detail, list):
        return None
    parts = []
    for d in detail[:5]:
        if isinstance(d, dict):
            loc = ".".join(str(x) for x in d.get("loc") or ())
            parts.append(f"{loc}: {d.get('msg', 'invalid')}" if loc else str(d.get("msg")))
    return "; ".join(parts) or None


def parse_error(status: int, body: bytes) -> DragomanError:
    try:
        obj = _decode(body) if body else None
    except msgspec.DecodeError:
        obj = None
    msg = obj.get("message") if isinstance(obj, dict) else None
    if isinstance(msg, dict):
        text = _detail_message(msg.get("detail")) or "the request does not match Mistral's schema"
        if status in (400, 422):
            # The client did not speak Mistral: its request was translated wrong or carries
            # something Mistral cannot take. An invalid request either way.
            return InvalidRequest(f"Mistral rejected the request: {text}")
        return error_for_status(status, text)
    err = chat_parse_error(400 if status == 422 else status, body)
    if status == 400 and "context length" in err.message:
        return ContextLengthExceeded(err.message, code=err.code)
    return err


MISTRAL_CHAT = dataclasses.replace(OPENAI_CHAT, parse_error=parse_error)


class MistralOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    safe_prompt: bool | None = None
    prompt_mode: str | None = None


class Mistral(HttpDialectProvider):
    """``POST {base}/chat/completions`` (base ``https://api.mistral.ai/v1``)."""

    dialect = MISTRAL_CHAT
    default_base_url = "https://api.mistral.ai/v1"

    def __init__(self, *, safe_prompt: bool | None = None, prompt_mode: str | None = None,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self._fixed: dict[str, Any] = {}
        if safe_prompt is not None:
            self._fixed["safe_prompt"] = safe_prompt
        if prompt_mode is not None:
            self._fixed["prompt_mode"] = prompt_mode

    def path(self, req: ChatRequest, stream: bool) -> str:
        return "/chat/completions"

    def prepare(self, body: dict[str, Any], req: ChatRequest, stream: bool) -> dict[str, Any]:
        out = mistral_body(body)
        out["stream"] = stream
        out.update(self._fixed)
        return out

    def parse_upstream_response(self, body: Any, req: ChatRequest) -> ChatResponse:
        Inbound(req).normalize(body, "message")
        return self.dialect.parse_response(body)

    def upstream_stream_parser(self, req: ChatRequest) -> MistralStreamParser:
        return MistralStreamParser(Inbound(req))


def from_spec(spec: ProviderSpec) -> Mistral:
    opts = spec.parse_options(MistralOptions)
    return Mistral(**spec.http_kwargs(), safe_prompt=opts.safe_prompt,
                   prompt_mode=opts.prompt_mode)

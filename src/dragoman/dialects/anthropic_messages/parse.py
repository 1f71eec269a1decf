"""Egress input: an Anthropic-family response or error body as neutral values. Streams:
``parse_stream``.

Lenient like the official SDK: unknown block types and keys are ignored (or kept as
``Opaque`` blocks), usage is accepted wherever it appears.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import msgspec

from ...core import (
    ChatResponse,
    ContextLengthExceeded,
    DragomanError,
    Opaque,
    Part,
    RedactedThinking,
    Text,
    Thinking,
    ToolCall,
    UpstreamError,
    error_for_status,
)
from ..tool_args import arguments_from_object as arguments_from_input
from ..tool_args import custom_input
from .wire import (
    NAME,
    ORIGIN,
    is_context_length_message,
    stop_from_wire,
    usage_from_wire,
)

_decode = msgspec.json.decode


def _block_part(b: dict[str, Any], custom_tools: Collection[str]) -> Part | None:
    t = b.get("type")
    if t == "text":
        text = b.get("text")
        return Text(text=text) if isinstance(text, str) else None
    if t == "tool_use":
        tid, name, inp = b.get("id"), b.get("name"), b.get("input")
        if not isinstance(tid, str) or not isinstance(name, str):
            return None
        if name in custom_tools and (raw := custom_input(inp)) is not None:
            return ToolCall(id=tid, name=name, arguments=raw, kind="custom")
        return ToolCall(id=tid, name=name,
                        arguments=arguments_from_input(inp if isinstance(inp, dict) else {}))
    if t == "thinking":
        text, sig = b.get("thinking"), b.get("signature")
        sig = sig if isinstance(sig, str) and sig else None
        return Thinking(text=text if isinstance(text, str) else "", signature=sig,
                        origin=ORIGIN if sig else None)
    if t == "redacted_thinking":
        data = b.get("data")
        return RedactedThinking(data=data, origin=ORIGIN) if isinstance(data, str) else None
    if isinstance(t, str):
        return Opaque(dialect=NAME, data=b)  # server tool blocks and anything newer
    return None


def parse_response(body: Any, custom_tools: Collection[str] = ()) -> ChatResponse:
    """An upstream's non-stream ``Message``. ``custom_tools`` names the request's custom
    (free-text) tools, whose emulated ``{"input": text}`` calls are unwrapped back."""
    if not isinstance(body, dict):
        raise UpstreamError("upstream returned a malformed response body")
    if body.get("type") == "error":
        raise _error_from_body(502, body)
    raw_content = body.get("content")
    if not isinstance(raw_content, list):
        raise UpstreamError("upstream returned a response without content")
    content = [p for b in raw_content if isinstance(b, dict)
               if (p := _block_part(b, custom_tools)) is not None]
    rid, model, seq = body.get("id"), body.get("model"), body.get("stop_sequence")
    return ChatResponse(
        id=rid if isinstance(rid, str) else "",
        model=model if isinstance(model, str) else "",
        content=content,
        stop_reason=stop_from_wire(body.get("stop_reason")),
        stop_sequence=seq if isinstance(seq, str) else None,
        usage=usage_from_wire(body.get("usage")),
    )


def _excerpt(body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text or "(empty body)"


def _error_from_body(status: int, data: Any) -> DragomanError:
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        msg = err.get("message")
        etype = err.get("type")
        message = msg if isinstance(msg, str) else f"upstream error (HTTP {status})"
        # Anthropic's error.type is not copied to ``code``: that field holds OpenAI-style
        # codes (other dialects' renderers echo it); the kind already carries the class.
        if status == 400 and is_context_length_message(message):
            return ContextLengthExceeded(message)
        if etype == "overloaded_error" and status >= 500:
            return error_for_status(529, message)
        return error_for_status(status, message)
    if isinstance(err, str):
        return error_for_status(status, err)
    return error_for_status(status, f"upstream error (HTTP {status})")


def parse_error(status: int, body: bytes) -> DragomanError:
    """Classify an upstream HTTP failure, keeping the upstream's message."""
    try:
        data = _decode(body)
    except (msgspec.DecodeError, ValueError):
        return error_for_status(status, f"upstream error (HTTP {status}): {_excerpt(body)}")
    return _error_from_body(status, data)

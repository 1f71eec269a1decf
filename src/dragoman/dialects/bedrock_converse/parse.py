"""Egress input: a Bedrock Converse response body, in-stream exceptions and HTTP errors as
neutral values. Streams: ``parse_stream``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import msgspec

from ...core import (
    ChatResponse,
    DragomanError,
    Part,
    RedactedThinking,
    Text,
    Thinking,
    ToolCall,
    UpstreamError,
)
from ..tool_args import arguments_from_object, custom_input
from .wire import ORIGIN, clean_error_type, error_for_type, stop_from_wire, usage_from_wire

_decode = msgspec.json.decode


def _block_part(b: dict[str, Any], custom_tools: Collection[str]) -> Part | None:
    if "text" in b:
        text = b["text"]
        return Text(text=text) if isinstance(text, str) else None
    tu = b.get("toolUse")
    if isinstance(tu, dict):
        tid, name, inp = tu.get("toolUseId"), tu.get("name"), tu.get("input")
        if not isinstance(tid, str) or not isinstance(name, str):
            return None
        if name in custom_tools and (raw := custom_input(inp)) is not None:
            return ToolCall(id=tid, name=name, arguments=raw, kind="custom")
        return ToolCall(id=tid, name=name,
                        arguments=arguments_from_object(inp if isinstance(inp, dict) else {}))
    rc = b.get("reasoningContent")
    if isinstance(rc, dict):
        rt = rc.get("reasoningText")
        if isinstance(rt, dict):
            text, sig = rt.get("text"), rt.get("signature")
            sig = sig if isinstance(sig, str) and sig else None
            return Thinking(text=text if isinstance(text, str) else "", signature=sig,
                            origin=ORIGIN if sig else None)
        red = rc.get("redactedContent")
        if isinstance(red, str):
            return RedactedThinking(data=red, origin=ORIGIN)
    return None  # images, citations, guard content… have no neutral output form


def parse_response(body: Any, custom_tools: Collection[str] = ()) -> ChatResponse:
    """A Converse answer. ``custom_tools`` names the request's free-text tools, whose
    emulated ``{"input": text}`` calls are unwrapped back."""
    if not isinstance(body, dict):
        raise UpstreamError("upstream returned a malformed response body")
    output = body.get("output")
    msg = output.get("message") if isinstance(output, dict) else None
    content = msg.get("content") if isinstance(msg, dict) else None
    if not isinstance(content, list):
        raise UpstreamError("upstream returned a response without output.message.content")
    parts = [p for b in content if isinstance(b, dict)
             if (p := _block_part(b, custom_tools)) is not None]
    return ChatResponse(id="", model="", content=parts,
                        stop_reason=stop_from_wire(body.get("stopReason")),
                        usage=usage_from_wire(body.get("usage")))


def _excerpt(body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text or "(empty body)"


def _message(data: Any) -> str | None:
    if isinstance(data, dict):
        for key in ("message", "Message"):
            if isinstance(data.get(key), str):
                return str(data[key])
    return None


def parse_error(status: int, body: bytes, error_type: str | None = None) -> DragomanError:
    """An HTTP failure: the type from the ``x-amzn-ErrorType`` header (``error_type``) or
    the body's ``__type``, the text from the body's ``message``."""
    try:
        data: Any = _decode(body) if body else None
    except (msgspec.DecodeError, ValueError):
        data = None
    etype = clean_error_type(error_type)
    if not etype and isinstance(data, dict) and isinstance(data.get("__type"), str):
        etype = clean_error_type(data["__type"])
    message = _message(data)
    if message is None:
        message = f"upstream error (HTTP {status})" if data is not None or not body \
            else f"upstream error (HTTP {status}): {_excerpt(body)}"
    return error_for_type(etype, message, status)


def stream_exception(exception_type: str, payload: bytes | str) -> DragomanError:
    """An ``exception`` frame (``throttlingException``…) → core error."""
    try:
        data: Any = _decode(payload) if payload else None
    except (msgspec.DecodeError, ValueError):
        data = None
    return error_for_type(exception_type, _message(data) or exception_type)

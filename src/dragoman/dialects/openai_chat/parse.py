"""Egress input: an upstream's Chat Completions response or error body as neutral values.
Streams: ``parse_stream``."""

from __future__ import annotations

from typing import Any

import msgspec

from ...core import (
    ChatResponse,
    DragomanError,
    Text,
    Thinking,
    ToolCall,
    UpstreamError,
    Usage,
    error_for_status,
    new_id,
)
from .wire import error_from_payload, parse_usage, reasoning_text, stop_reason_for

_decode = msgspec.json.decode


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers answer with content parts
        return "".join(p["text"] for p in content
                       if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _call_of(tc: Any) -> ToolCall | None:
    if not isinstance(tc, dict):
        return None
    call_id = tc.get("id")
    if not isinstance(call_id, str) or not call_id:
        call_id = new_id("call_")
    custom = tc.get("custom")
    if tc.get("type") == "custom" or isinstance(custom, dict):
        if not isinstance(custom, dict):
            return None
        name, inp = custom.get("name"), custom.get("input")
        return ToolCall(id=call_id, name=name if isinstance(name, str) else "",
                        arguments=inp if isinstance(inp, str) else "", kind="custom")
    fn = tc.get("function")
    if not isinstance(fn, dict):
        return None
    name, args = fn.get("name"), fn.get("arguments")
    if isinstance(args, (dict, list)):
        args = msgspec.json.encode(args).decode()
    return ToolCall(id=call_id, name=name if isinstance(name, str) else "",
                    arguments=args if isinstance(args, str) else "")


def parse_response(body: Any) -> ChatResponse:
    if not isinstance(body, dict):
        raise UpstreamError("malformed upstream response: not a JSON object")
    if body.get("error") is not None and not body.get("choices"):
        raise error_from_payload(body["error"])
    choices = body.get("choices")
    choice: dict[str, Any] = {}
    if isinstance(choices, list):
        for c in choices:
            if isinstance(c, dict) and c.get("index", 0) == 0:
                choice = c
                break
    msg = choice.get("message")
    if not isinstance(msg, dict):
        msg = {}
    content: list[Any] = []
    reasoning = reasoning_text(msg)
    if reasoning:
        content.append(Thinking(text=reasoning))
    text = _text_of(msg.get("content"))
    if text:
        content.append(Text(text=text))
    refusal = msg.get("refusal")
    refused = isinstance(refusal, str) and bool(refusal)
    if isinstance(refusal, str) and refusal:
        content.append(Text(text=refusal))
    calls = msg.get("tool_calls")
    has_calls = False
    for tc in calls if isinstance(calls, list) else ():
        call = _call_of(tc)
        if call is not None:
            content.append(call)
            has_calls = True
    fc = msg.get("function_call")
    if isinstance(fc, dict):
        call = _call_of({"function": fc})
        if call is not None:
            content.append(call)
            has_calls = True
    rid, model, created = body.get("id"), body.get("model"), body.get("created")
    return ChatResponse(
        id=rid if isinstance(rid, str) else "",
        model=model if isinstance(model, str) else "",
        content=content,
        stop_reason=stop_reason_for(choice.get("finish_reason"), has_calls, refused),
        usage=parse_usage(body.get("usage")) or Usage(),
        created=created if isinstance(created, int) and not isinstance(created, bool) else 0,
    )


def parse_error(status: int, body: bytes) -> DragomanError:
    try:
        obj = _decode(body) if body else None
    except msgspec.DecodeError:
        obj = None
    if isinstance(obj, dict):
        err_val = obj.get("error")
        if err_val is None and isinstance(obj.get("message"), str):
            err_val = obj  # vLLM / some proxies: {"object":"error","message":...}
        if err_val is not None:
            return error_from_payload(err_val, status)
    excerpt = " ".join(body[:200].decode("utf-8", "replace").split())
    message = f"upstream returned HTTP {status}"
    return error_for_status(status, f"{message}: {excerpt}" if excerpt else message)

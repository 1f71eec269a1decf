"""Egress input: an upstream's Responses object or error body as neutral values. Streams:
``parse_stream``."""

from __future__ import annotations

from typing import Any

import msgspec

from ...core import (
    BudgetExhausted,
    ChatResponse,
    ContextLengthExceeded,
    DragomanError,
    Opaque,
    Part,
    StopReason,
    Text,
    Thinking,
    ToolCall,
    UpstreamError,
    Usage,
    error_for_status,
    new_id,
)
from ..framing import compact_json
from .wire import (
    NAME,
    ORIGIN,
    error_for_code,
    parse_usage,
    retry_after,
)


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def item_parts(item: dict[str, Any]) -> tuple[list[Part], bool]:
    """One output item → neutral parts, and whether it carried a refusal."""
    typ = item.get("type")
    if typ == "message":
        parts: list[Part] = []
        refusal = False
        content = item.get("content")
        for c in content if isinstance(content, list) else ():
            if not isinstance(c, dict):
                continue
            if c.get("type") == "refusal":
                refusal = True
                parts.append(Text(text=_str(c.get("refusal"))))
            elif isinstance(c.get("text"), str):
                parts.append(Text(text=c["text"]))
        return parts, refusal
    if typ == "reasoning":
        return [Thinking(text=reasoning_text(item), signature=item.get("encrypted_content")
                         if isinstance(item.get("encrypted_content"), str) else None,
                         origin=ORIGIN, id=item.get("id") if isinstance(item.get("id"), str)
                         else None)], False
    if typ in ("function_call", "custom_tool_call"):
        custom = typ == "custom_tool_call"
        args = item.get("input" if custom else "arguments")
        if isinstance(args, (dict, list)):
            args = compact_json(args)
        call_id = item.get("call_id") or item.get("id")
        return [ToolCall(id=_str(call_id), name=_str(item.get("name")), arguments=_str(args),
                         kind="custom" if custom else "function")], False
    return [Opaque(dialect=NAME, data=item)], False


def reasoning_text(item: dict[str, Any]) -> str:
    for key in ("summary", "content"):
        seq = item.get(key)
        if isinstance(seq, list):
            texts = [s["text"] for s in seq
                     if isinstance(s, dict) and isinstance(s.get("text"), str)]
            if texts:
                return "\n\n".join(texts)
    return ""


def stop_reason(status: Any, incomplete: Any, tool_use: bool, refusal: bool) -> StopReason:
    if status == "incomplete":
        reason = incomplete.get("reason") if isinstance(incomplete, dict) else None
        return StopReason.CONTENT_FILTER if reason == "content_filter" else StopReason.MAX_TOKENS
    if tool_use:
        return StopReason.TOOL_USE
    return StopReason.REFUSAL if refusal else StopReason.END_TURN


def failure(obj: Any) -> DragomanError:
    """The error of a failed response (``response.error``) or an ``error`` event."""
    err = obj.get("error") if isinstance(obj, dict) else None
    src = err if isinstance(err, dict) else obj if isinstance(obj, dict) else {}
    message = src.get("message")
    code = src.get("code")
    if not isinstance(code, str):
        code = src.get("type") if isinstance(src.get("type"), str) and src.get("type") != "error" \
            else None
    return error_for_code(code, message if isinstance(message, str) and message
                          else "The upstream response failed.")


def parse_response(body: Any) -> ChatResponse:
    if not isinstance(body, dict):
        raise UpstreamError("Malformed upstream response: expected a JSON object.")
    if body.get("status") == "failed" or (body.get("status") is None and
                                          isinstance(body.get("error"), dict)):
        raise failure(body)
    content: list[Part] = []
    refusal = False
    output = body.get("output")
    for item in output if isinstance(output, list) else ():
        if isinstance(item, dict):
            parts, r = item_parts(item)
            content.extend(parts)
            refusal = refusal or r
    tool_use = any(isinstance(p, ToolCall) for p in content)
    created = body.get("created_at")
    return ChatResponse(
        id=body["id"] if isinstance(body.get("id"), str) else new_id("resp_"),
        model=_str(body.get("model")),
        content=content,
        stop_reason=stop_reason(body.get("status"), body.get("incomplete_details"),
                                tool_use, refusal),
        usage=parse_usage(body.get("usage")) or Usage(),
        created=int(created) if isinstance(created, (int, float)) and
        not isinstance(created, bool) else 0,
    )


_QUOTA = frozenset({"insufficient_quota", "usage_limit_reached", "usage_not_included"})


def _excerpt(body: bytes) -> str:
    text = " ".join(body[:300].decode("utf-8", "replace").split())
    return text[:200]


def parse_error(status: int, body: bytes) -> DragomanError:
    message = code = param = etype = None
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        src = err if isinstance(err, dict) else data
        if isinstance(err, str):
            message = err
        for key in ("message", "detail"):
            if message is None and isinstance(src.get(key), str):
                message = src[key]
        code = src.get("code") if isinstance(src.get("code"), str) else None
        etype = src.get("type") if isinstance(src.get("type"), str) else None
        param = src.get("param") if isinstance(src.get("param"), str) else None
    if not message:
        excerpt = _excerpt(body)
        message = f"Upstream returned HTTP {status}" + (f": {excerpt}" if excerpt else ".")
    if code == "context_length_exceeded":
        return ContextLengthExceeded(message, code=code, param=param)
    if code in _QUOTA or etype in _QUOTA:
        return BudgetExhausted(message, code=code or etype)
    err_ = error_for_status(status, message, retry_after=retry_after(message), code=code)
    if param is not None and err_.param is None:
        err_.param = param
    return err_

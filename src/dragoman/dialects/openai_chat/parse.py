"""Egress input: an upstream's Chat Completions response or error body as neutral values.
Streams: ``parse_stream``."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from ...core import (
    ChatResponse,
    DragomanError,
    Refusal,
    Text,
    Thinking,
    ToolCall,
    UpstreamError,
    Usage,
    error_for_status,
    new_id,
)
from .wire import citation_of, error_from_payload, parse_usage, reasoning_text, stop_reason_for

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
        anns = msg.get("annotations")  # usually []: nothing to do then
        cites = [c for c in map(citation_of, anns) if c is not None] \
            if anns and isinstance(anns, list) else None
        content.append(Text(text=text, citations=cites or None))
    refusal = msg.get("refusal")
    refused = isinstance(refusal, str) and bool(refusal)
    if isinstance(refusal, str) and refusal:
        content.append(Refusal(text=refusal))
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


# The whole answer nearly every call gets, decoded into structs (as the stream's chunks
# are, ``parse_stream``): one text message, a finish reason, usage with plain counts. The
# message's fields are the ones ``parse_response`` reads; any of them but ``content``
# being non-null (``annotations`` non-empty), a key not listed, a value of another type or
# a negative count fails the typed decode (or ``_typed`` declines it), and the answer goes
# the general way instead: the same ``ChatResponse`` either way (tests/dialects).
_Count = Annotated[int, msgspec.Meta(ge=0)]


class _Message(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    content: str | None = None
    role: Any = None
    refusal: None = None
    annotations: list[Any] | None = None
    reasoning_content: None = None
    reasoning: None = None
    tool_calls: None = None
    function_call: None = None
    audio: None = None


class _Choice(msgspec.Struct, gc=False):
    index: Any = 0
    message: _Message | None = None
    finish_reason: Any = None


class _PromptDetails(msgspec.Struct, gc=False):
    cached_tokens: _Count = 0
    cache_write_tokens: _Count = 0


class _CompletionDetails(msgspec.Struct, gc=False):
    reasoning_tokens: _Count = 0


class _Usage(msgspec.Struct, gc=False):
    prompt_tokens: _Count = 0
    completion_tokens: _Count = 0
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None


class _Answer(msgspec.Struct, gc=False):
    id: str = ""
    model: str = ""
    created: int = 0
    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    error: None = None


_decode_typed = msgspec.json.Decoder(_Answer).decode


def parse_response_bytes(raw: bytes) -> ChatResponse:
    """``parse_response`` of the JSON ``raw``, answers of the common shape read by a typed
    decode (no dicts built, none walked); raises ``msgspec.DecodeError`` on JSON that
    does not parse."""
    try:
        resp = _typed(_decode_typed(raw))
    except msgspec.DecodeError:  # (ValidationError too: an answer of another shape)
        resp = None
    return parse_response(_decode(raw)) if resp is None else resp


def _typed(answer: _Answer) -> ChatResponse | None:
    choice = None
    for c in answer.choices or ():
        if c.index == 0:
            choice = c
            break
    content: list[Any] = []
    finish_reason = None
    if choice is not None:
        msg = choice.message
        if msg is not None:
            if msg.annotations:
                return None  # (citations: the general way)
            if msg.content:
                content.append(Text(text=msg.content))
        finish_reason = choice.finish_reason
    u = answer.usage
    if u is None:
        usage = Usage()
    else:
        p, d = u.prompt_tokens_details, u.completion_tokens_details
        usage = Usage(input_tokens=u.prompt_tokens, output_tokens=u.completion_tokens,
                      cached_tokens=p.cached_tokens if p else 0,
                      cache_write_tokens=p.cache_write_tokens if p else 0,
                      reasoning_tokens=d.reasoning_tokens if d else 0)
    return ChatResponse(id=answer.id, model=answer.model, content=content,
                        stop_reason=stop_reason_for(finish_reason, False, False),
                        usage=usage, created=answer.created)


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

"""Ingress output: a neutral answer or error as a Chat Completions client's JSON body."""

from __future__ import annotations

from typing import Any

from ...core import (
    ChatResponse,
    DragomanError,
    StopReason,
    Text,
    Thinking,
    ToolCall,
)
from ..contract import RenderContext
from ..framing import dumps
from .wire import error_object, finish_reason_for, usage_json


def tool_call_json(call: ToolCall) -> dict[str, Any]:
    if call.kind == "custom":
        return {"id": call.id, "type": "custom",
                "custom": {"name": call.name, "input": call.arguments}}
    return {"id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": call.arguments}}


def render_response(resp: ChatResponse, ctx: RenderContext) -> bytes:
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    for p in resp.content:
        if isinstance(p, Text):
            texts.append(p.text)
        elif isinstance(p, ToolCall):
            calls.append(tool_call_json(p))
        elif isinstance(p, Thinking) and p.text:
            thinking.append(p.text)
        # RedactedThinking / Opaque parts have no Chat form.
    text = "".join(texts)
    message: dict[str, Any] = {"role": "assistant"}
    if resp.stop_reason is StopReason.REFUSAL and text:
        message["content"] = None
        message["refusal"] = text
    else:
        message["content"] = text if text or not calls else None
        message["refusal"] = None
    message["annotations"] = []
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["reasoning_content"] = "\n\n".join(thinking)
    body = {
        "id": ctx.id,
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": finish_reason_for(resp.stop_reason, bool(calls)),
        }],
        "usage": usage_json(resp.usage),
        "service_tier": "default",
        "system_fingerprint": None,
    }
    return dumps(body)


def render_error(err: DragomanError) -> tuple[int, bytes]:
    return err.status, dumps({"error": error_object(err)})

"""Ingress output: a neutral answer, token count or error as an Anthropic Messages client's
JSON body."""

from __future__ import annotations

from typing import Any

from ...core import (
    ChatResponse,
    DragomanError,
    RedactedThinking,
    Text,
    Thinking,
    ToolCall,
)
from ...core import Opaque as OpaquePart
from ..contract import RenderContext
from ..framing import dumps
from ..tool_args import object_from_arguments as input_from_arguments
from .wire import (
    ERROR_STATUS,
    NAME,
    ORIGIN,
    error_envelope,
    stop_to_wire,
    usage_to_wire,
)


def render_response(resp: ChatResponse, ctx: RenderContext) -> bytes:
    """The ``Message`` object. Thinking of another provider family is still shown (its
    text, ``signature: ""``: the client can display it but it will not verify if replayed;
    our own parser treats an empty signature as "not replayable"); empty foreign thinking
    and foreign redacted/opaque blocks are dropped."""
    stop_reason, stop_sequence = stop_to_wire(resp.stop_reason, resp.stop_sequence)
    content: list[dict[str, Any]] = []
    for p in resp.content:
        if isinstance(p, Text):
            content.append({"type": "text", "text": p.text, "citations": None})
        elif isinstance(p, ToolCall):
            content.append({"type": "tool_use", "id": p.id, "name": p.name,
                            "input": input_from_arguments(p.arguments, p.kind == "custom")})
        elif isinstance(p, Thinking):
            if p.origin == ORIGIN:
                content.append({"type": "thinking", "thinking": p.text,
                                "signature": p.signature or ""})
            elif p.text:
                content.append({"type": "thinking", "thinking": p.text, "signature": ""})
        elif isinstance(p, RedactedThinking):
            if p.origin == ORIGIN:
                content.append({"type": "redacted_thinking", "data": p.data})
        elif isinstance(p, OpaquePart) and p.dialect == NAME:
            content.append(p.data)
    return dumps({
        "id": ctx.id,
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage_to_wire(resp.usage),
    })


def render_count_tokens(input_tokens: int) -> bytes:
    """The ``POST /v1/messages/count_tokens`` answer."""
    return dumps({"input_tokens": input_tokens})


def render_error(err: DragomanError) -> tuple[int, bytes]:
    """Status and ``{"type":"error","error":{"type","message"}}`` (mapping.md §10); an
    explicitly set ``err.status`` (an upstream's own 4xx passed through) wins."""
    explicit: int | None = getattr(err, "_status", None)
    status = explicit if explicit is not None else ERROR_STATUS.get(err.kind, 500)
    return status, dumps(error_envelope(err))


_TEXT, _THINKING, _TOOL, _CUSTOM = 1, 2, 3, 4

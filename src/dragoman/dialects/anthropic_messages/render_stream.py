"""Ingress output, streaming: neutral stream events as Anthropic Messages SSE events."""

from __future__ import annotations

from typing import Any

from ...core import (
    Finish,
    OpaqueItem,
    RedactedThinkingBlock,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ThinkingEnd,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from ..contract import RenderContext
from ..framing import dumps, sse
from .wire import (
    _CUSTOM,
    _TEXT,
    _THINKING,
    _TOOL,
    NAME,
    ORIGIN,
    error_envelope,
    stop_to_wire,
    usage_to_wire,
)


def _escape(text: str) -> str:
    """``text`` as the inside of a JSON string literal."""
    return dumps(text).decode()[1:-1]


class StreamRenderer:
    """Neutral events → Messages SSE frames.

    ``message_start`` + ``ping`` first; then content blocks with sequential ``index`` from
    0, one open at a time (an event of another kind closes the open block); the terminal
    ``Finish`` closes the open block and sends ``message_delta`` (cumulative usage) and
    ``message_stop``; a ``StreamError`` sends ``event: error``. Tool deltas that arrive
    for a block already closed (interleaved parallel calls) cannot be expressed in this
    grammar and are dropped. Custom (free-text) tool input streams as the JSON object
    ``{"input": "<text>"}``."""

    __slots__ = ("_closed", "_ctx", "_custom_started", "_index", "_open", "_open_id",
                 "_usage")

    def __init__(self, ctx: RenderContext) -> None:
        self._ctx = ctx
        self._usage = Usage()
        self._index = 0
        self._open = 0  # kind of the open block, 0 when none
        self._open_id: str | None = None
        self._custom_started = False
        self._closed = False

    def start(self) -> bytes:
        u = usage_to_wire(self._usage)
        u["output_tokens"] = 0
        u.pop("output_tokens_details", None)
        return sse("message_start", {"type": "message_start", "message": {
            "id": self._ctx.id, "type": "message", "role": "assistant",
            "model": self._ctx.model, "content": [], "stop_reason": None,
            "stop_sequence": None, "usage": u,
        }}) + sse("ping", {"type": "ping"})

    # helpers

    def _close(self) -> bytes:
        if not self._open:
            return b""
        out = b""
        if self._open == _CUSTOM:
            tail = '"}' if self._custom_started else '{"input":""}'
            out = self._delta({"type": "input_json_delta", "partial_json": tail})
        out += sse("content_block_stop", {"type": "content_block_stop", "index": self._index})
        self._index += 1
        self._open = 0
        self._open_id = None
        return out

    def _begin(self, kind: int, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._open = kind
        return out + sse("content_block_start", {"type": "content_block_start",
                                                 "index": self._index, "content_block": block})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return sse("content_block_delta", {"type": "content_block_delta",
                                           "index": self._index, "delta": delta})

    def _whole(self, block: dict[str, Any]) -> bytes:
        out = self._begin(_TEXT, block)
        self._open = 0
        out += sse("content_block_stop", {"type": "content_block_stop", "index": self._index})
        self._index += 1
        return out

    def feed(self, event: StreamEvent) -> bytes:
        if self._closed:
            return b""
        if isinstance(event, TextDelta):
            out = b"" if self._open == _TEXT else self._begin(_TEXT, {"type": "text", "text": ""})
            if event.text:
                out += self._delta({"type": "text_delta", "text": event.text})
            return out
        if isinstance(event, ThinkingDelta):
            out = b""
            if self._open != _THINKING:
                out = self._begin(_THINKING, {"type": "thinking", "thinking": "",
                                              "signature": ""})
            if event.text:
                out += self._delta({"type": "thinking_delta", "thinking": event.text})
            return out
        if isinstance(event, ThinkingEnd):
            mine = event.origin == ORIGIN and bool(event.signature)
            out = b""
            if self._open != _THINKING:
                if not mine:
                    return b""  # an empty foreign block: nothing to show
                out = self._begin(_THINKING, {"type": "thinking", "thinking": "",
                                              "signature": ""})
            if mine:
                out += self._delta({"type": "signature_delta", "signature": event.signature})
            return out + self._close()
        if isinstance(event, ToolCallStart):
            custom = event.kind == "custom"
            out = self._begin(_CUSTOM if custom else _TOOL, {
                "type": "tool_use", "id": event.id, "name": event.name, "input": {}})
            self._open_id = event.id
            self._custom_started = False
            return out
        if isinstance(event, ToolCallDelta):
            if self._open_id != event.id or not event.arguments:
                return b""
            if self._open == _CUSTOM:
                piece = _escape(event.arguments)
                if not self._custom_started:
                    self._custom_started = True
                    piece = '{"input":"' + piece
                return self._delta({"type": "input_json_delta", "partial_json": piece})
            return self._delta({"type": "input_json_delta", "partial_json": event.arguments})
        if isinstance(event, ToolCallEnd):
            return self._close() if self._open_id == event.id else b""
        if isinstance(event, RedactedThinkingBlock):
            if event.origin != ORIGIN:
                return b""
            return self._whole({"type": "redacted_thinking", "data": event.data})
        if isinstance(event, OpaqueItem):
            if event.part.dialect != NAME:
                return b""
            return self._whole(event.part.data)
        if isinstance(event, UsageUpdate):
            self._usage = event.usage
            return b""
        if isinstance(event, Finish):
            self._closed = True
            stop_reason, stop_sequence = stop_to_wire(event.stop_reason, event.stop_sequence)
            return self._close() + sse("message_delta", {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": usage_to_wire(self._usage),
            }) + sse("message_stop", {"type": "message_stop"})
        if isinstance(event, StreamError):
            self._closed = True
            return sse("error", error_envelope(event.error))
        return b""  # agent events: the server handles them

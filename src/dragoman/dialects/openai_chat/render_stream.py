"""Ingress output, streaming: neutral stream events as Chat Completions SSE chunks."""

from __future__ import annotations

from typing import Any

from ...core import (
    Finish,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from ..contract import RenderContext
from ..framing import sse
from .wire import error_object, finish_reason_for, usage_json

_DONE = b"data: [DONE]\n\n"


class StreamRenderer:
    """``chat.completion.chunk`` frames for one choice.

    Tool calls get consecutive ``index`` values in start order; ``id``/``type``/name appear
    only in the first fragment of a call. With ``include_usage`` every chunk carries
    ``"usage": null`` and a ``choices: []`` usage chunk precedes ``data: [DONE]``.
    """

    __slots__ = ("_calls", "_ctx", "_done", "_started", "_usage", "_usage_on")

    def __init__(self, ctx: RenderContext) -> None:
        self._ctx = ctx
        self._usage_on = bool(ctx.request is not None and ctx.request.include_usage)
        self._calls: dict[str, tuple[int, bool]] = {}  # id -> (index, is_custom)
        self._usage = Usage()
        self._started = False
        self._done = False

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        payload: dict[str, Any] = {
            "id": self._ctx.id,
            "object": "chat.completion.chunk",
            "created": self._ctx.created,
            "model": self._ctx.model,
            "choices": choices,
        }
        if self._usage_on:
            payload["usage"] = usage
        return sse(None, payload)

    def _delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        frame = self._chunk([{"index": 0, "delta": delta, "logprobs": None,
                              "finish_reason": finish_reason}])
        return frame if self._started else self.start() + frame

    def start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._delta({"role": "assistant", "content": ""})

    def feed(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        if isinstance(event, TextDelta):
            if not event.text:
                return b""
            return self._delta({"content": event.text})
        if isinstance(event, ThinkingDelta):
            if not event.text:
                return b""
            return self._delta({"reasoning_content": event.text})
        if isinstance(event, ToolCallStart):
            index = len(self._calls)
            custom = event.kind == "custom"
            self._calls[event.id] = (index, custom)
            tc: dict[str, Any] = {"index": index, "id": event.id}
            if custom:
                tc["type"] = "custom"
                tc["custom"] = {"name": event.name, "input": ""}
            else:
                tc["type"] = "function"
                tc["function"] = {"name": event.name, "arguments": ""}
            return self._delta({"tool_calls": [tc]})
        if isinstance(event, ToolCallDelta):
            entry = self._calls.get(event.id)
            if entry is None or not event.arguments:
                return b""
            index, custom = entry
            frag = ({"index": index, "custom": {"input": event.arguments}} if custom
                    else {"index": index, "function": {"arguments": event.arguments}})
            return self._delta({"tool_calls": [frag]})
        if isinstance(event, UsageUpdate):
            self._usage = event.usage
            return b""
        if isinstance(event, Finish):
            self._done = True
            out = self._delta(
                {}, finish_reason_for(event.stop_reason, bool(self._calls)))
            if self._usage_on:
                out += self._chunk([], usage_json(self._usage))
            return out + _DONE
        if isinstance(event, StreamError):
            self._done = True
            return sse(None, {"error": error_object(event.error)}) + _DONE
        # ThinkingEnd, RedactedThinkingBlock, ToolCallEnd, OpaqueItem: nothing to send;
        # agent events (StepStart, AgentToolCall, AgentToolResult) are the server's.
        return b""

"""Ingress output, streaming: neutral stream events as Chat Completions SSE chunks."""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from ...core import (
    Finish,
    RefusalDelta,
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
from ..framing import HOLE, FrameTemplate, sse
from .wire import error_object, finish_reason_for, usage_json

_DONE = b"data: [DONE]\n\n"
_text_of = attrgetter("text")


class StreamRenderer:
    """``chat.completion.chunk`` frames for one choice.

    Tool calls get consecutive ``index`` values in start order; ``id``/``type``/name appear
    only in the first fragment of a call. With ``include_usage`` every chunk carries
    ``"usage": null`` and a ``choices: []`` usage chunk precedes ``data: [DONE]``.
    """

    __slots__ = ("_calls", "_ctx", "_done", "_started", "_text", "_usage", "_usage_on")

    def __init__(self, ctx: RenderContext) -> None:
        self._ctx = ctx
        self._usage_on = bool(ctx.request is not None and ctx.request.include_usage)
        self._calls: dict[str, tuple[int, bool]] = {}  # id -> (index, is_custom)
        self._usage = Usage()
        self._started = False
        self._done = False
        self._text: FrameTemplate | None = None  # the text delta's frame, once needed

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

    def feed_texts(self, deltas: list[TextDelta]) -> bytes:
        """``feed`` for a run of ``TextDelta`` events: one frame each, made in one go
        (``FrameTemplate.fill_each``)."""
        texts = list(filter(None, map(_text_of, deltas)))  # (an empty delta: no frame)
        text = self._text
        if text is None or self._done or not texts:  # (the first text starts the stream)
            return b"".join(map(self.feed, deltas))
        return text.fill_each(texts)

    def feed(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        if type(event) is TextDelta:  # by far the most frequent
            if not event.text:
                return b""
            text = self._text
            if text is None:
                head = self.start()  # (so the template is the delta's frame alone)
                text = self._text = FrameTemplate(self._delta({"content": HOLE}))
                return head + text.fill(event.text)
            return text.fill(event.text)
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
        if isinstance(event, RefusalDelta):
            return self._delta({"refusal": event.text}) if event.text else b""
        if isinstance(event, StreamError):
            self._done = True
            return sse(None, {"error": error_object(event.error)}) + _DONE
        # ThinkingEnd, RedactedThinkingBlock, ToolCallEnd, OpaqueItem, TextStart (Chat has
        # one content string), CitationAdded (chunk deltas have no annotations): nothing;
        # agent events (StepStart, AgentToolCall, AgentToolResult) are the server's.
        return b""

"""Ingress output, streaming: neutral stream events as Chat Completions SSE chunks."""

from __future__ import annotations

from operator import attrgetter
from typing import Any

import msgspec

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
_encode = msgspec.json.Encoder().encode

# A chunk's frame is the stream's envelope (``data: {"id":…,"object":…,"created":…,
# "model":…,"choices":[``, then ``]}`` or ``],"usage":null}``) around one choice: the
# envelope is made once per stream, the choices below are constants or one small encode
# (bench/README.md, "The stream's envelope made once").
_OBJECT = b',"object":"chat.completion.chunk","created":'
_ROLE_CHOICE = b'{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,' \
    b'"finish_reason":null}'
_TEXT_CHOICE = b'{"index":0,"delta":{"content":' + _encode(HOLE) + \
    b'},"logprobs":null,"finish_reason":null}'
_TAIL = b"]}\n\n"
_TAIL_USAGE = b'],"usage":null}\n\n'


class StreamRenderer:
    """``chat.completion.chunk`` frames for one choice.

    Tool calls get consecutive ``index`` values in start order; ``id``/``type``/name appear
    only in the first fragment of a call. With ``include_usage`` every chunk carries
    ``"usage": null`` and a ``choices: []`` usage chunk precedes ``data: [DONE]``.
    """

    __slots__ = ("_calls", "_done", "_head", "_started", "_tail", "_text", "_usage",
                 "_usage_on")

    def __init__(self, ctx: RenderContext) -> None:
        self._usage_on = bool(ctx.request is not None and ctx.request.include_usage)
        self._head = b'data: {"id":' + _encode(ctx.id) + _OBJECT + b"%d" % ctx.created \
            + b',"model":' + _encode(ctx.model) + b',"choices":['
        self._tail = _TAIL_USAGE if self._usage_on else _TAIL
        self._calls: dict[str, tuple[int, bool]] = {}  # id -> (index, is_custom)
        self._usage: Usage | None = None
        self._started = False
        self._done = False
        self._text: FrameTemplate | None = None  # the text delta's frame, once needed

    def _delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        frame = self._head + _encode({"index": 0, "delta": delta, "logprobs": None,
                                      "finish_reason": finish_reason}) + self._tail
        return frame if self._started else self.start() + frame

    def start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._head + _ROLE_CHOICE + self._tail

    def _text_template(self) -> tuple[bytes, FrameTemplate]:
        """The text delta's frame, made at the first text (after the role frame, which
        it returns too, once)."""
        head = self.start()
        text = self._text = FrameTemplate(self._head + _TEXT_CHOICE + self._tail)
        return head, text

    def feed_texts(self, deltas: list[TextDelta]) -> bytes:
        """``feed`` for a run of ``TextDelta`` events: one frame each, made in one go
        (``FrameTemplate.fill_each``), the first run of a stream too (its first read, all
        of it rendered at once)."""
        texts = list(filter(None, map(_text_of, deltas)))  # (an empty delta: no frame)
        if self._done or not texts:
            return b""
        text = self._text
        if text is None:
            head, text = self._text_template()
            return head + text.fill_each(texts)
        return text.fill_each(texts)

    def feed(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        if type(event) is TextDelta:  # by far the most frequent
            if not event.text:
                return b""
            text = self._text
            if text is None:
                head, text = self._text_template()
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
            if self._usage_on:  # (the envelope with no choice, and the usage)
                out += self._head + b'],"usage":' + _encode(usage_json(
                    self._usage or Usage())) + b"}\n\n"
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

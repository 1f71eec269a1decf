"""Egress input, streaming: one decoded NDJSON line of ``/api/chat`` at a time as neutral
events.

- Tool calls arrive whole, arguments as a JSON *object*, often without an ``id``: ids are
  synthesized.
- Reasoning streams in ``message.thinking``.
- A failure after the 200 is a final ``{"error": "..."}`` line.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import msgspec

from ...core import (
    Finish,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ThinkingEnd,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    TransportError,
    UpstreamError,
    UsageUpdate,
    new_id,
)
from ..tool_args import (
    arguments_from_object,
    custom_input,
)
from .wire import error_message, stop_from_wire, usage_from_wire

_decode = msgspec.json.decode


class StreamParser:
    """Decoded NDJSON lines → neutral events. The stream is complete at the ``done: true``
    line; ending without one is a cut stream.

    ``custom_tools`` names the request's free-text tools (emulated as a function with one
    ``input`` string) whose calls are turned back into custom calls."""

    __slots__ = ("_calls", "_custom", "_done", "_thinking")

    def __init__(self, custom_tools: Collection[str] = ()) -> None:
        self._custom = custom_tools
        self._calls = 0
        self._thinking = False
        self._done = False

    def feed(self, event: str | None, data: Any) -> list[StreamEvent]:
        if self._done:
            return []
        if isinstance(data, (str, bytes)):
            try:
                data = _decode(data)
            except (msgspec.DecodeError, ValueError):
                self._done = True
                return [StreamError(error=UpstreamError("upstream sent a line that is not JSON"))]
        if not isinstance(data, dict):
            self._done = True
            return [StreamError(error=UpstreamError("upstream sent a line that is not an "
                                                    "object"))]
        if data.get("error") is not None:
            self._done = True
            return [StreamError(error=UpstreamError(error_message(data["error"])))]
        out: list[StreamEvent] = []
        msg = data.get("message")
        if isinstance(msg, dict):
            self._message(msg, out)
        if data.get("done") is True:
            self._end_thinking(out)
            self._done = True
            out.append(UsageUpdate(usage=usage_from_wire(data)))
            out.append(Finish(stop_reason=stop_from_wire(data.get("done_reason"),
                                                         self._calls > 0)))
        return out

    def close(self) -> list[StreamEvent]:
        if self._done:
            return []
        self._done = True
        return [StreamError(error=TransportError("upstream stream ended before completion"))]

    def _end_thinking(self, out: list[StreamEvent]) -> None:
        if self._thinking:
            self._thinking = False
            out.append(ThinkingEnd())

    def _message(self, msg: dict[str, Any], out: list[StreamEvent]) -> None:
        thinking = msg.get("thinking")
        if isinstance(thinking, str) and thinking:
            self._thinking = True
            out.append(ThinkingDelta(text=thinking))
        content = msg.get("content")
        if isinstance(content, str) and content:
            self._end_thinking(out)
            out.append(TextDelta(text=content))
        calls = msg.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict):
                self._end_thinking(out)
                self._call(call, out)

    def _call(self, call: dict[str, Any], out: list[StreamEvent]) -> None:
        fn = call.get("function")
        fn = fn if isinstance(fn, dict) else {}
        name = fn.get("name")
        name = name if isinstance(name, str) else ""
        cid = call.get("id")
        cid = cid if isinstance(cid, str) and cid else new_id("call_")
        self._calls += 1
        args = fn.get("arguments")
        if isinstance(args, str):  # some models' templates give a JSON string
            try:
                args = _decode(args)
            except (msgspec.DecodeError, ValueError):
                args = {"input": args} if name in self._custom else args
        raw = custom_input(args) if name in self._custom else None
        if raw is not None:
            out.append(ToolCallStart(id=cid, name=name, kind="custom"))
            text = raw
        else:
            out.append(ToolCallStart(id=cid, name=name))
            text = args if isinstance(args, str) else arguments_from_object(args)
        if text:
            out.append(ToolCallDelta(id=cid, arguments=text))
        out.append(ToolCallEnd(id=cid))

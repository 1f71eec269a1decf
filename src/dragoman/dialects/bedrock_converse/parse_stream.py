"""Egress input, streaming: Bedrock Converse's decoded event-stream messages as neutral events.

The stream parser sees one message at a time as ``(event type, JSON payload)`` — the
``:event-type`` header of an ``event`` frame, or the ``:exception-type`` of an
``exception`` frame (exceptions are members of the same event union in the service
model). Unknown events and keys are ignored, like the AWS SDKs do.

Converse sends ``metadata`` (usage) after ``messageStop``, so ``Finish`` is emitted on
``metadata``, or at the end of the stream when it never came.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import msgspec

from ...core import (
    Finish,
    RedactedThinkingBlock,
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
)
from ..tool_args import custom_input
from .parse import stream_exception
from .wire import ORIGIN, stop_from_wire, usage_from_wire

_decode = msgspec.json.decode

_TEXT, _THINKING, _TOOL, _CUSTOM = 1, 2, 3, 4


class _Block:
    __slots__ = ("buf", "got_delta", "id", "kind", "signature")

    def __init__(self, kind: int, id: str = "") -> None:
        self.kind = kind
        self.id = id
        self.buf: list[str] = []
        self.got_delta = False
        self.signature: str | None = None


class StreamParser:
    """Decoded ConverseStream messages → neutral events."""

    __slots__ = ("_blocks", "_custom", "_done", "_stop_reason")

    def __init__(self, custom_tools: Collection[str] = ()) -> None:
        self._custom = custom_tools
        self._blocks: dict[int, _Block] = {}
        self._stop_reason: Any = None
        self._done = False

    def feed(self, event: str | None, data: str | bytes) -> list[StreamEvent]:
        if self._done or event is None:
            return []
        if event.endswith("Exception"):
            self._done = True
            return [StreamError(error=stream_exception(event, data))]
        try:
            obj = _decode(data)
        except (msgspec.DecodeError, ValueError):
            self._done = True
            return [StreamError(error=UpstreamError(
                f"upstream sent a {event} event whose payload is not JSON"))]
        if not isinstance(obj, dict):
            return []
        if event == "contentBlockDelta":
            return self._on_delta(obj)
        if event == "contentBlockStart":
            return self._on_start(obj)
        if event == "contentBlockStop":
            return self._on_stop(obj)
        if event == "messageStop":
            out = self._close_blocks()
            self._stop_reason = obj.get("stopReason") or "end_turn"
            return out
        if event == "metadata":
            out = self._close_blocks()
            out.append(UsageUpdate(usage=usage_from_wire(obj.get("usage"))))
            if self._stop_reason is not None:
                out.append(self._finish())
            return out
        return []  # messageStart and anything newer

    def close(self) -> list[StreamEvent]:
        if self._done:
            return []
        if self._stop_reason is not None:  # messageStop came, metadata did not
            return [*self._close_blocks(), self._finish()]
        self._done = True
        return [StreamError(error=TransportError("upstream stream ended before completion"))]

    def _finish(self) -> Finish:
        self._done = True
        return Finish(stop_reason=stop_from_wire(self._stop_reason))

    def _on_start(self, obj: dict[str, Any]) -> list[StreamEvent]:
        index, start = obj.get("contentBlockIndex"), obj.get("start")
        if not isinstance(index, int):
            return []
        tu = start.get("toolUse") if isinstance(start, dict) else None
        if isinstance(tu, dict):
            tid, name = tu.get("toolUseId"), tu.get("name")
            if isinstance(tid, str) and isinstance(name, str):
                custom = name in self._custom
                self._blocks[index] = _Block(_CUSTOM if custom else _TOOL, tid)
                return [ToolCallStart(id=tid, name=name,
                                      kind="custom" if custom else "function")]
        return []

    def _on_delta(self, obj: dict[str, Any]) -> list[StreamEvent]:
        index, delta = obj.get("contentBlockIndex"), obj.get("delta")
        if not isinstance(index, int) or not isinstance(delta, dict):
            return []
        text = delta.get("text")
        if isinstance(text, str):
            b = self._blocks.setdefault(index, _Block(_TEXT))
            return [TextDelta(text=text)] if text and b.kind == _TEXT else []
        tu = delta.get("toolUse")
        if isinstance(tu, dict):
            call = self._blocks.get(index)
            piece = tu.get("input")
            if call is None or not isinstance(piece, str) or not piece:
                return []
            call.got_delta = True
            if call.kind == _TOOL:
                return [ToolCallDelta(id=call.id, arguments=piece)]
            if call.kind == _CUSTOM:
                call.buf.append(piece)
            return []
        rc = delta.get("reasoningContent")
        if isinstance(rc, dict):
            b = self._blocks.setdefault(index, _Block(_THINKING))
            if b.kind != _THINKING:
                return []
            out: list[StreamEvent] = []
            rtext = rc.get("text")
            if isinstance(rtext, str) and rtext:
                b.got_delta = True
                out.append(ThinkingDelta(text=rtext))
            sig = rc.get("signature")
            if isinstance(sig, str) and sig:
                b.got_delta = True
                b.signature = sig
            red = rc.get("redactedContent")
            if isinstance(red, str) and red:
                out.append(RedactedThinkingBlock(data=red, origin=ORIGIN))
            return out
        return []  # citations and anything newer

    def _on_stop(self, obj: dict[str, Any]) -> list[StreamEvent]:
        index = obj.get("contentBlockIndex")
        b = self._blocks.pop(index, None) if isinstance(index, int) else None
        return self._end(b) if b is not None else []

    def _close_blocks(self) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for index in sorted(self._blocks):
            out.extend(self._end(self._blocks[index]))
        self._blocks.clear()
        return out

    def _end(self, b: _Block) -> list[StreamEvent]:
        if b.kind == _THINKING:
            if not b.got_delta:  # a redacted-only block: already emitted whole
                return []
            return [ThinkingEnd(signature=b.signature, origin=ORIGIN if b.signature else None)]
        if b.kind == _TOOL:
            if not b.got_delta:  # no input deltas: the input is an empty object
                return [ToolCallDelta(id=b.id, arguments="{}"), ToolCallEnd(id=b.id)]
            return [ToolCallEnd(id=b.id)]
        if b.kind == _CUSTOM:
            joined = "".join(b.buf)
            try:
                raw = custom_input(_decode(joined)) if joined else None
            except (msgspec.DecodeError, ValueError):
                raw = None
            if raw is None:
                raw = joined
            out: list[StreamEvent] = [ToolCallDelta(id=b.id, arguments=raw)] if raw else []
            out.append(ToolCallEnd(id=b.id))
            return out
        return []

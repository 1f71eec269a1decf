"""Egress input, streaming: an Anthropic-family SSE stream as neutral stream events.

Lenient like the official SDK: unknown event types, block types and keys are ignored (or
kept as ``Opaque`` blocks), usage is accepted wherever it appears.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from typing import Any

import msgspec

from ...core import (
    Finish,
    Opaque,
    OpaqueItem,
    RedactedThinkingBlock,
    StopReason,
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
from ..tool_args import arguments_from_object as arguments_from_input
from ..tool_args import custom_input
from .wire import (
    _CUSTOM,
    _OPAQUE,
    _SKIP,
    _TEXT,
    _THINKING,
    _TOOL,
    NAME,
    ORIGIN,
    WireUsage,
    error_for_type,
    stop_from_wire,
)

_decode = msgspec.json.decode


class _Block:
    __slots__ = ("buf", "data", "got_delta", "id", "kind", "signature")

    def __init__(self, kind: int, id: str = "", data: dict[str, Any] | None = None) -> None:
        self.kind = kind
        self.id = id
        self.data = data
        self.buf: list[str] = []
        self.got_delta = False
        self.signature: str | None = None


class StreamParser:
    """One decoded SSE event at a time → neutral events."""

    __slots__ = ("_blocks", "_custom", "_done", "_stop_reason", "_stop_sequence", "_usage")

    def __init__(self, custom_tools: Collection[str] = ()) -> None:
        self._custom = custom_tools
        self._blocks: dict[int, _Block] = {}
        self._usage = WireUsage()
        self._stop_reason: Any = None
        self._stop_sequence: str | None = None
        self._done = False

    def feed(self, event: str | None, data: str) -> list[StreamEvent]:
        if self._done:
            return []
        try:
            obj = _decode(data)
        except (msgspec.DecodeError, ValueError):
            if event is None or event == "ping":
                return []  # keep-alives, comments, "[DONE]" from lookalike servers
            # A named event whose data is corrupt lost part of the answer: finishing
            # cleanly would hand the client a silently truncated response.
            raise UpstreamError(f"upstream sent a malformed '{event[:40]}' event") from None
        if not isinstance(obj, dict):
            return []
        kind = obj.get("type")
        if not isinstance(kind, str):
            kind = event
        if kind == "content_block_delta":
            return self._on_delta(obj)
        if kind == "content_block_start":
            return self._on_start(obj)
        if kind == "content_block_stop":
            return self._on_stop(obj)
        if kind == "message_start":
            msg = obj.get("message")
            if isinstance(msg, dict):
                self._usage.merge(msg.get("usage"))
            return [UsageUpdate(usage=self._usage.neutral())]
        if kind == "message_delta":
            delta = obj.get("delta")
            if isinstance(delta, dict):
                if delta.get("stop_reason") is not None:
                    self._stop_reason = delta["stop_reason"]
                seq = delta.get("stop_sequence")
                self._stop_sequence = seq if isinstance(seq, str) else None
            if "usage" not in obj:
                return []
            self._usage.merge(obj.get("usage"))
            return [UsageUpdate(usage=self._usage.neutral())]
        if kind == "message_stop":
            return [self._finish()]
        if kind == "error":
            self._done = True
            err = obj.get("error")
            etype, msg = "", "upstream stream error"
            if isinstance(err, dict):
                if isinstance(err.get("type"), str):
                    etype = err["type"]
                if isinstance(err.get("message"), str):
                    msg = err["message"]
            return [StreamError(error=error_for_type(etype, msg))]
        return []  # ping and anything unknown

    def close(self) -> list[StreamEvent]:
        if self._done:
            return []
        if self._stop_reason is not None:
            # message_delta carried the stop reason; only message_stop went missing.
            return [self._finish()]
        self._done = True
        return [StreamError(error=TransportError("upstream stream ended before completion"))]

    def _finish(self) -> Finish:
        self._done = True
        reason = stop_from_wire(self._stop_reason)
        seq = self._stop_sequence if reason is StopReason.STOP_SEQUENCE else None
        return Finish(stop_reason=reason, stop_sequence=seq)

    def _on_start(self, obj: dict[str, Any]) -> list[StreamEvent]:
        index, cb = obj.get("index"), obj.get("content_block")
        if not isinstance(index, int) or not isinstance(cb, dict):
            return []
        t = cb.get("type")
        if t == "text":
            self._blocks[index] = _Block(_TEXT)
            text = cb.get("text")
            return [TextDelta(text=text)] if isinstance(text, str) and text else []
        if t == "thinking":
            b = self._blocks[index] = _Block(_THINKING)
            sig = cb.get("signature")
            if isinstance(sig, str) and sig:
                b.signature = sig
            text = cb.get("thinking")
            return [ThinkingDelta(text=text)] if isinstance(text, str) and text else []
        if t == "redacted_thinking":
            self._blocks[index] = _Block(_SKIP)
            data = cb.get("data")
            return [RedactedThinkingBlock(data=data, origin=ORIGIN)] if isinstance(data, str) \
                else []
        if t == "tool_use":
            tid, name = cb.get("id"), cb.get("name")
            if not isinstance(tid, str) or not isinstance(name, str):
                self._blocks[index] = _Block(_SKIP)
                return []
            custom = name in self._custom
            b = self._blocks[index] = _Block(_CUSTOM if custom else _TOOL, tid, cb)
            return [ToolCallStart(id=tid, name=name, kind="custom" if custom else "function")]
        if isinstance(t, str):
            self._blocks[index] = _Block(_OPAQUE, data=dict(cb))
            return []
        self._blocks[index] = _Block(_SKIP)
        return []

    def _on_delta(self, obj: dict[str, Any]) -> list[StreamEvent]:
        index = obj.get("index")
        b = self._blocks.get(index) if isinstance(index, int) else None
        delta = obj.get("delta")
        if b is None or not isinstance(delta, dict):
            return []
        dt = delta.get("type")
        if dt == "text_delta":
            text = delta.get("text")
            if b.kind == _TEXT and isinstance(text, str) and text:
                return [TextDelta(text=text)]
        elif dt == "input_json_delta":
            pj = delta.get("partial_json")
            if not isinstance(pj, str) or not pj:
                return []
            b.got_delta = True
            if b.kind == _TOOL:
                return [ToolCallDelta(id=b.id, arguments=pj)]
            if b.kind in (_CUSTOM, _OPAQUE):
                b.buf.append(pj)
        elif dt == "thinking_delta":
            text = delta.get("thinking")
            if b.kind == _THINKING and isinstance(text, str) and text:
                return [ThinkingDelta(text=text)]
        elif dt == "signature_delta":
            sig = delta.get("signature")
            if isinstance(sig, str) and sig:
                b.signature = sig
        return []  # citations_delta and anything newer

    def _on_stop(self, obj: dict[str, Any]) -> list[StreamEvent]:
        index = obj.get("index")
        b = self._blocks.pop(index, None) if isinstance(index, int) else None
        if b is None:
            return []
        out: list[StreamEvent] = []
        inp: Any
        if b.kind == _THINKING:
            return [ThinkingEnd(signature=b.signature,
                                origin=ORIGIN if b.signature else None)]
        if b.kind == _TOOL:
            if not b.got_delta:
                # No input_json_delta: the input is the start block's (``{}`` normally);
                # a tool_use input is always an object, so neutral arguments say "{}".
                inp = b.data.get("input") if b.data is not None else None
                out.append(ToolCallDelta(id=b.id, arguments=arguments_from_input(
                    inp if isinstance(inp, dict) else {})))
            out.append(ToolCallEnd(id=b.id))
            return out
        if b.kind == _CUSTOM:
            inp = b.data.get("input") if b.data is not None else None
            if b.buf:
                try:
                    inp = _decode("".join(b.buf))
                except (msgspec.DecodeError, ValueError):
                    inp = None
            raw = custom_input(inp)
            if raw is None:  # not the emulated shape: pass the JSON through unchanged
                raw = "".join(b.buf) if b.buf else arguments_from_input(
                    inp if isinstance(inp, dict) else {})
            if raw:
                out.append(ToolCallDelta(id=b.id, arguments=raw))
            out.append(ToolCallEnd(id=b.id))
            return out
        if b.kind == _OPAQUE and b.data is not None:
            if b.buf:
                with contextlib.suppress(msgspec.DecodeError, ValueError):
                    b.data["input"] = _decode("".join(b.buf))
            return [OpaqueItem(part=Opaque(dialect=NAME, data=b.data))]
        return []

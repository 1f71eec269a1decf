"""Bedrock Converse → neutral: the response body, the stream's decoded event-stream
messages, in-stream exceptions and HTTP errors.

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
    ChatResponse,
    DragomanError,
    Finish,
    Part,
    RedactedThinking,
    RedactedThinkingBlock,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    Thinking,
    ThinkingDelta,
    ThinkingEnd,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    TransportError,
    UpstreamError,
    UsageUpdate,
)
from ..tool_args import arguments_from_object, custom_input
from ._common import ORIGIN, clean_error_type, error_for_type, stop_from_wire, usage_from_wire

_decode = msgspec.json.decode


def _block_part(b: dict[str, Any], custom_tools: Collection[str]) -> Part | None:
    if "text" in b:
        text = b["text"]
        return Text(text=text) if isinstance(text, str) else None
    tu = b.get("toolUse")
    if isinstance(tu, dict):
        tid, name, inp = tu.get("toolUseId"), tu.get("name"), tu.get("input")
        if not isinstance(tid, str) or not isinstance(name, str):
            return None
        if name in custom_tools and (raw := custom_input(inp)) is not None:
            return ToolCall(id=tid, name=name, arguments=raw, kind="custom")
        return ToolCall(id=tid, name=name,
                        arguments=arguments_from_object(inp if isinstance(inp, dict) else {}))
    rc = b.get("reasoningContent")
    if isinstance(rc, dict):
        rt = rc.get("reasoningText")
        if isinstance(rt, dict):
            text, sig = rt.get("text"), rt.get("signature")
            sig = sig if isinstance(sig, str) and sig else None
            return Thinking(text=text if isinstance(text, str) else "", signature=sig,
                            origin=ORIGIN if sig else None)
        red = rc.get("redactedContent")
        if isinstance(red, str):
            return RedactedThinking(data=red, origin=ORIGIN)
    return None  # images, citations, guard content… have no neutral output form


def parse_response(body: Any, custom_tools: Collection[str] = ()) -> ChatResponse:
    """A Converse answer. ``custom_tools`` names the request's free-text tools, whose
    emulated ``{"input": text}`` calls are unwrapped back."""
    if not isinstance(body, dict):
        raise UpstreamError("upstream returned a malformed response body")
    output = body.get("output")
    msg = output.get("message") if isinstance(output, dict) else None
    content = msg.get("content") if isinstance(msg, dict) else None
    if not isinstance(content, list):
        raise UpstreamError("upstream returned a response without output.message.content")
    parts = [p for b in content if isinstance(b, dict)
             if (p := _block_part(b, custom_tools)) is not None]
    return ChatResponse(id="", model="", content=parts,
                        stop_reason=stop_from_wire(body.get("stopReason")),
                        usage=usage_from_wire(body.get("usage")))


# --- errors ----------------------------------------------------------------------------------


def _excerpt(body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text or "(empty body)"


def _message(data: Any) -> str | None:
    if isinstance(data, dict):
        for key in ("message", "Message"):
            if isinstance(data.get(key), str):
                return str(data[key])
    return None


def parse_error(status: int, body: bytes, error_type: str | None = None) -> DragomanError:
    """An HTTP failure: the type from the ``x-amzn-ErrorType`` header (``error_type``) or
    the body's ``__type``, the text from the body's ``message``."""
    try:
        data: Any = _decode(body) if body else None
    except (msgspec.DecodeError, ValueError):
        data = None
    etype = clean_error_type(error_type)
    if not etype and isinstance(data, dict) and isinstance(data.get("__type"), str):
        etype = clean_error_type(data["__type"])
    message = _message(data)
    if message is None:
        message = f"upstream error (HTTP {status})" if data is not None or not body \
            else f"upstream error (HTTP {status}): {_excerpt(body)}"
    return error_for_type(etype, message, status)


def stream_exception(exception_type: str, payload: bytes | str) -> DragomanError:
    """An ``exception`` frame (``throttlingException``…) → core error."""
    try:
        data: Any = _decode(payload) if payload else None
    except (msgspec.DecodeError, ValueError):
        data = None
    return error_for_type(exception_type, _message(data) or exception_type)


# --- stream ----------------------------------------------------------------------------------

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


"""Egress input, streaming: ``streamGenerateContent?alt=sse`` chunks as neutral events.

A stream chunk and a whole answer have the same shape (a ``GenerateContentResponse``
carrying only new parts), so this reader serves both. Function calls arrive whole; ids
Gemini leaves out are synthesized (``wire.synthesize_call_id``). A ``thoughtSignature``
becomes a ``ThinkingEnd`` (``origin="gemini"``) right before the part that carried it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import msgspec

from ...core import (
    Finish,
    Opaque,
    OpaqueItem,
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
    Usage,
    UsageUpdate,
)
from ..tool_args import arguments_from_object, custom_input
from .wire import (
    NAME,
    ORIGIN,
    error_from_payload,
    stop_from_wire,
    synthesize_call_id,
    usage_from_wire,
)

_decode = msgspec.json.decode


DEFAULT_CALL_PREFIX = "call_"


class StreamParser:
    """One SSE ``data:`` payload (a JSON ``GenerateContentResponse``) at a time → neutral
    events. Gemini has no terminal event: the stream is complete when it ends after a
    chunk with a ``finishReason`` (or a blocked prompt); anything else is a cut stream.

    ``custom_tools`` names the request's free-text tools (emulated as a function with one
    ``input`` string) whose calls are turned back into custom calls; ``call_prefix`` starts
    synthesized call ids (``toolu_`` for Anthropic clients, ``call_`` for OpenAI ones).
    """

    __slots__ = ("_blocked", "_call_prefix", "_calls", "_custom", "_done", "_finish",
                 "_response_id", "_thinking", "_usage")

    def __init__(self, custom_tools: Collection[str] = (),
                 call_prefix: str = DEFAULT_CALL_PREFIX) -> None:
        self._custom = custom_tools
        self._call_prefix = call_prefix
        self._response_id: str | None = None
        self._calls = 0
        self._thinking = False
        self._finish: str | None = None
        self._blocked = False
        self._usage: Usage | None = None
        self._done = False

    @property
    def response_id(self) -> str | None:
        return self._response_id

    def feed(self, event: str | None, data: Any) -> list[StreamEvent]:
        if self._done:
            return []
        if isinstance(data, (str, bytes)):
            if not data.strip() or data == "[DONE]":
                return []  # keep-alives; "[DONE]" from OpenAI-lookalike proxies
            try:
                data = _decode(data)
            except (msgspec.DecodeError, ValueError):
                self._done = True
                return [StreamError(error=UpstreamError(
                    "upstream sent a malformed stream chunk (not JSON)"))]
        if isinstance(data, list):  # a JSON-array stream (no ``alt=sse``): same objects
            out: list[StreamEvent] = []
            for item in data:
                out += self.feed(event, item)
            return out
        if not isinstance(data, dict):
            self._done = True
            return [StreamError(error=UpstreamError(
                "upstream sent a malformed stream chunk (not an object)"))]
        return self._chunk(data)

    def close(self) -> list[StreamEvent]:
        if self._done:
            return []
        self._done = True
        if self._finish is None and not self._blocked:
            return [StreamError(error=TransportError("upstream stream ended before completion"))]
        return [self._finish_event()]

    def finish(self) -> list[StreamEvent]:
        """End of a whole (non-stream) answer: a missing ``finishReason`` is not a cut."""
        if self._done:
            return []
        self._done = True
        return [self._finish_event()]

    def _finish_event(self) -> Finish:
        if self._blocked:
            return Finish(stop_reason=StopReason.CONTENT_FILTER)
        return Finish(stop_reason=stop_from_wire(self._finish, self._calls > 0))

    # --- one chunk --------------------------------------------------------------------

    def _chunk(self, obj: dict[str, Any]) -> list[StreamEvent]:
        err = obj.get("error")
        if err is not None and not obj.get("candidates"):
            self._done = True
            return [StreamError(error=error_from_payload(500, err))]
        rid = obj.get("responseId")
        if self._response_id is None and isinstance(rid, str) and rid:
            self._response_id = rid
        out: list[StreamEvent] = []
        cands = obj.get("candidates")
        cand = cands[0] if isinstance(cands, list) and cands else None
        if isinstance(cand, dict):
            content = cand.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            if isinstance(parts, list):
                for p in parts:
                    if isinstance(p, dict):
                        self._part(p, out)
            fr = cand.get("finishReason")
            if isinstance(fr, str) and fr:
                self._finish = fr
        else:
            fb = obj.get("promptFeedback")
            if isinstance(fb, dict) and fb.get("blockReason"):
                self._blocked = True  # a 200 with no candidates: the prompt was refused
        usage = usage_from_wire(obj.get("usageMetadata"))
        if usage is not None and usage != self._usage:
            self._usage = usage  # cumulative: the last one wins
            out.append(UsageUpdate(usage=usage))
        return out

    def _part(self, p: dict[str, Any], out: list[StreamEvent]) -> None:
        sig = p.get("thoughtSignature")
        sig = sig if isinstance(sig, str) and sig else None
        text = p.get("text")
        if p.get("thought") is True:
            if isinstance(text, str) and text:
                self._thinking = True
                out.append(ThinkingDelta(text=text))
            if sig is not None:
                self._thinking = False
                out.append(ThinkingEnd(signature=sig, origin=ORIGIN))
            return
        if sig is not None:
            out.append(ThinkingEnd(signature=sig, origin=ORIGIN))
        self._thinking = False
        if isinstance(text, str):
            if text:
                out.append(TextDelta(text=text))
            return
        fc = p.get("functionCall")
        if isinstance(fc, dict):
            self._call(fc, out)
            return
        data = {k: v for k, v in p.items() if k != "thoughtSignature"}
        if data:
            # executableCode, codeExecutionResult, inlineData (generated images)…: only a
            # Gemini upstream understands them; kept whole for a replay.
            out.append(OpaqueItem(part=Opaque(dialect=NAME, data=data)))

    def _call(self, fc: dict[str, Any], out: list[StreamEvent]) -> None:
        name = fc.get("name")
        if not isinstance(name, str) or not name:
            return
        cid = fc.get("id")
        if not isinstance(cid, str) or not cid:
            cid = synthesize_call_id(self._call_prefix, self._response_id, self._calls)
        self._calls += 1
        args = fc.get("args")
        raw = custom_input(args) if name in self._custom else None
        if raw is not None:
            out.append(ToolCallStart(id=cid, name=name, kind="custom"))
            if raw:
                out.append(ToolCallDelta(id=cid, arguments=raw))
        else:
            out.append(ToolCallStart(id=cid, name=name))
            out.append(ToolCallDelta(id=cid, arguments=arguments_from_object(
                args if isinstance(args, dict) else {})))
        out.append(ToolCallEnd(id=cid))

"""Anthropic Messages forwarded as is, unless a ``system``/``developer`` message sits
inside ``messages`` (Claude Code sends one; the translator folds it into ``system``).
Usage is ``message_start``'s, updated by ``message_delta``'s cumulative counts."""

from __future__ import annotations

from typing import Any

import msgspec

from ...core import ChatRequest, DragomanError, StreamError, Usage
from ..forwarding import NO_CONTEXT, ForwardRules, StreamRules, UsageOnly, decoded
from .render_stream import StreamRenderer
from .wire import WireUsage, usage_from_wire


class _Frame(msgspec.Struct):
    usage: Any = None
    message: UsageOnly | None = None


_FRAME = msgspec.json.Decoder(_Frame)


class AnthropicForward(ForwardRules):
    def request(self, body: dict[str, Any], req: ChatRequest,
                model: str) -> tuple[dict[str, Any], bool] | None:
        if any(m.is_system for m in req.messages):
            return None
        return super().request(body, req, model)

    def usage_of(self, raw: Any) -> Usage | None:
        return usage_from_wire(raw) if isinstance(raw, dict) else None

    def stream(self, withhold_usage: bool) -> AnthropicStream:
        return AnthropicStream()


class AnthropicStream(StreamRules):
    __slots__ = ("_counts",)
    terminal_events = frozenset({b"message_stop", b"error"})

    def __init__(self) -> None:
        self.usage = None
        self._counts: WireUsage | None = None

    def read(self, data: bytes) -> bool:
        frame = decoded(_FRAME, data)
        if frame is None:
            return True
        raw = frame.usage if frame.usage is not None else \
            frame.message.usage if frame.message is not None else None
        if isinstance(raw, dict):
            # message_start then message_delta: cumulative counts, present fields win.
            if self._counts is None:
                self._counts = WireUsage()
            self._counts.merge(raw)
            self.usage = self._counts.neutral()
        return True

    def failure(self, err: DragomanError, first: bytes | None, last: bytes | None) -> bytes:
        return StreamRenderer(NO_CONTEXT).feed(StreamError(error=err))


FORWARD = AnthropicForward()

"""OpenAI Responses forwarded as is: always (the server keeps stored and chained
requests, which need the gateway's own ids and history, on the translating path). Usage
is the final ``response`` snapshot's; a broken stream ends with ``response.failed``
about the upstream's own response."""

from __future__ import annotations

from typing import Any

import msgspec

from ...core import DragomanError, StreamError, Usage
from ..forwarding import NO_CONTEXT, ForwardRules, StreamRules, UsageOnly, decoded
from ..framing import sse
from .render_stream import StreamRenderer
from .wire import parse_usage


class _Frame(msgspec.Struct):
    response: UsageOnly | None = None
    sequence_number: int | None = None


_FRAME = msgspec.json.Decoder(_Frame)
_OBJECT = msgspec.json.Decoder(dict[str, Any])


class ResponsesForward(ForwardRules):
    def usage_of(self, raw: Any) -> Usage | None:
        return parse_usage(raw)

    def stream(self, withhold_usage: bool) -> ResponsesStream:
        return ResponsesStream()


class ResponsesStream(StreamRules):
    __slots__ = ()
    terminal_events = frozenset({b"response.completed", b"response.failed",
                                 b"response.incomplete", b"error"})

    def read(self, data: bytes) -> bool:
        frame = decoded(_FRAME, data)
        if frame is not None and frame.response is not None and frame.response.usage:
            usage = parse_usage(frame.response.usage)
            if usage is not None:
                self.usage = usage
        return True

    def failure(self, err: DragomanError, first: bytes | None, last: bytes | None) -> bytes:
        """``response.failed`` continuing the upstream's numbering, about the upstream's
        response (its ``response.created`` snapshot), with the failure rendered by the
        dialect itself."""
        rendered = StreamRenderer(NO_CONTEXT).feed(StreamError(error=err))
        payload = _OBJECT.decode(rendered.split(b"data: ", 1)[1])
        seq = -1
        frame = decoded(_FRAME, last) if last is not None else None
        if frame is not None and frame.sequence_number is not None:
            seq = frame.sequence_number
        payload["sequence_number"] = seq + 1
        created = decoded(_OBJECT, first) if first is not None else None
        snapshot = created.get("response") if created is not None else None
        if isinstance(snapshot, dict):
            payload["response"] = {**snapshot, "status": "failed",
                                   "error": payload["response"].get("error")}
        return sse("response.failed", payload)


FORWARD = ResponsesForward()

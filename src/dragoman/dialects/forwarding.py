"""What the dialects' ``forward`` rules share (each dialect's own are in its ``forward.py``).

When a client speaks its upstream's own dialect (a Chat client on the ``openai`` provider,
an Anthropic client on ``anthropic``, a Responses client on ``openai_responses``),
translating to the neutral model and back decodes and re-encodes every chunk for nothing.
Forwarding sends the client's body with only what the dialect's rules change (the model
name, a flag for usage) and relays the upstream's answer unchanged, reading usage from
the few usage-bearing frames only (a byte search finds them, and only those are decoded,
into tiny structs that skip everything else). A stream that breaks off, or stops without
its terminal event, is ended with an error in the dialect's own grammar (``failure``).

The client sees the upstream's own response ids and model name. Stream frames are not
validated on the way through (the client gets them as the vendor sent them); a whole
answer is decoded for its usage anyway, so one that is not JSON is refused as on the
translating path.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from ..core import ChatRequest, DragomanError, UpstreamError, Usage
from .contract import ForwardStream, RenderContext

T = TypeVar("T")

USAGE = b'"usage"'
NULL_USAGE = b'"usage":null'
NO_CONTEXT = RenderContext(id="", model="", created=0)
"""What a renderer needs to render one error frame (no response of the gateway's own)."""


class UsageOnly(msgspec.Struct):
    usage: Any = None


class _Typed(msgspec.Struct):
    type: Any = None


def decoded(decoder: msgspec.json.Decoder[T], data: bytes) -> T | None:
    """``data`` decoded by ``decoder`` (into one of the small structs a rule reads), or
    None if it is not that."""
    try:
        return decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


_USAGE_ONLY = msgspec.json.Decoder(UsageOnly)
_TYPED = msgspec.json.Decoder(_Typed)


class ForwardRules:
    """A ``contract.Forward`` with the common defaults: the body is sent with the
    upstream's model name, and usage is the answer's top-level ``usage``."""

    def request(self, body: dict[str, Any], req: ChatRequest,
                model: str) -> tuple[dict[str, Any], bool] | None:
        up = dict(body)
        up["model"] = model
        return up, False

    def usage_of_body(self, raw: bytes) -> Usage | None:
        """Usage of a whole answer. Decoding it also checks the body is JSON (a body the
        client could not parse is refused, as on the translating path)."""
        frame = decoded(_USAGE_ONLY, raw)
        if frame is None:
            raise UpstreamError("upstream returned a body that is not valid JSON")
        return self.usage_of(frame.usage)

    def usage_of(self, raw: Any) -> Usage | None:
        raise NotImplementedError

    def stream(self, withhold_usage: bool) -> ForwardStream:
        raise NotImplementedError


class StreamRules:
    """A ``contract.ForwardStream`` with the common parts: frames that mention
    ``"usage"`` with a value are read; a stream ends with one of ``terminal_events`` (the
    SSE event name, or the data's JSON ``type``); an upstream's own error is its ``error``
    event or an ``{"error": …}`` frame."""

    __slots__ = ("usage",)
    watch = USAGE
    unless = NULL_USAGE
    terminal_events: frozenset[bytes] = frozenset()

    def __init__(self) -> None:
        self.usage: Usage | None = None

    def read(self, data: bytes) -> bool:
        raise NotImplementedError

    def is_terminal(self, event: bytes | None, data: bytes) -> bool:
        if event is not None:
            return event in self.terminal_events
        typed = decoded(_TYPED, data)
        return typed is not None and isinstance(typed.type, str) \
            and typed.type.encode() in self.terminal_events

    def ended_in_error(self, event: bytes | None, data: bytes | None) -> bool:
        return event == b"error" or (data is not None and data.startswith(b'{"error"'))

    def failure(self, err: DragomanError, first: bytes | None, last: bytes | None) -> bytes:
        raise NotImplementedError

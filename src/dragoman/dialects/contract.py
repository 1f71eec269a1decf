"""What every dialect provides: the ``Dialect`` record and its parts.

A dialect is pure (no I/O) and symmetric, and every dialect folder has the same files:

``__init__.py``      the ``Dialect`` (or, upstream-only, ``UpstreamDialect``) record
``wire.py``          the dialect's names, tables and small shared helpers
``ingress.py``       ``parse_request(body) -> ChatRequest`` (a client speaks this dialect)
``render.py``        ``render_response(resp, ctx) -> bytes``, ``render_error(err)``
``render_stream.py`` ``StreamRenderer(ctx)``: ``.start() -> bytes``, ``.feed(event) -> bytes``
``egress.py``        ``render_request(req) -> dict`` (dragoman speaks this dialect upstream)
``parse.py``         ``parse_response(body) -> ChatResponse``, ``parse_error(status, body)``
``parse_stream.py``  ``StreamParser()``: ``.feed(event, data) -> list[StreamEvent]``, ``.close()``
``forward.py``       ``FORWARD``: the same-dialect pass-through's rules (client-facing
                     dialects whose clients may be forwarded to an upstream as is)

Upstream-only dialects (Bedrock Converse, Gemini, Ollama) have the egress half only.
``parse_response_bytes`` (optional, OpenAI Chat's) reads a whole answer from its bytes.
Two optional methods take a whole upstream read at once where a dialect has them (OpenAI
Chat's): ``StreamParser.feed_data(datas)`` (a read's one-line ``data:`` frames, as bytes:
``net.sse.SseDecoder.data_frames``) and ``StreamRenderer.feed_texts(deltas)`` (a run of
``TextDelta`` events); each gives exactly what ``feed`` gives a frame or an event at a time.
Shared helpers live next to this module: ``framing`` (SSE frames, JSON), ``fields``
(request field validators), ``data_urls``, ``effort`` (reasoning effort and thinking
budgets), ``tool_args`` (tool arguments as JSON text and objects), ``forwarding`` (what
the ``forward`` rules of the dialects share).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from ..core import ChatRequest, ChatResponse, DragomanError, StreamEvent, Usage


class RenderContext(msgspec.Struct, kw_only=True):
    """What a renderer needs besides the response itself.

    ``id`` is the response id in this dialect's shape (``chatcmpl-…``, ``resp_…``,
    ``msg_…``), ``model`` the model name the client asked for, ``created`` a unix time,
    ``request`` the parsed client request (Responses echoes its settings, Chat reads
    ``include_usage``).
    """

    id: str
    model: str
    created: int
    request: ChatRequest | None = None


class StreamRenderer(Protocol):
    def start(self) -> bytes: ...

    def feed(self, event: StreamEvent) -> bytes: ...


class StreamParser(Protocol):
    def feed(self, event: str | None, data: str) -> list[StreamEvent]: ...

    def close(self) -> list[StreamEvent]: ...


class ForwardStream(Protocol):
    """One forwarded stream's rules (a ``net.sse.FrameWatch``): the relay hands it only
    the frames that contain ``watch`` with a value (not only ``unless``); it reads usage
    from them and may drop one (a usage chunk the client did not ask for)."""

    watch: bytes
    unless: bytes
    usage: Usage | None

    def read(self, data: bytes) -> bool: ...

    def is_terminal(self, event: bytes | None, data: bytes) -> bool: ...

    def ended_in_error(self, event: bytes | None, data: bytes | None) -> bool: ...

    def failure(self, err: DragomanError, first: bytes | None, last: bytes | None) -> bytes: ...


class Forward(Protocol):
    """Same-dialect forwarding, as a translator from a dialect to itself that also reports
    usage: what to change in the client's body (``request``: the model name, a flag that
    makes the upstream report usage; None when the request must be translated instead),
    and how to read usage from the upstream's whole answer or stream."""

    def request(self, body: dict[str, Any], req: ChatRequest,
                model: str) -> tuple[dict[str, Any], bool] | None:
        """(body to send upstream, withhold the upstream's usage-only frame from the
        client) or None."""
        ...

    def usage_of_body(self, raw: bytes) -> Usage | None: ...

    def stream(self, withhold_usage: bool) -> ForwardStream: ...


@dataclass(frozen=True, slots=True)
class UpstreamDialect:
    """The egress half: all an HTTP provider needs. Upstream-only wire formats (Bedrock
    Converse, Gemini…) provide just this; client-facing dialects are full ``Dialect``s."""

    name: str
    render_request: Callable[[ChatRequest], dict[str, Any]]
    parse_response: Callable[[Any], ChatResponse]
    stream_parser: Callable[[], StreamParser]
    parse_error: Callable[[int, bytes], DragomanError]
    parse_response_bytes: Callable[[bytes], ChatResponse] | None = field(
        default=None, kw_only=True)
    """``parse_response`` of the answer's JSON bytes, where the dialect reads the common
    answer without decoding it to dicts first (OpenAI Chat's); it raises
    ``msgspec.DecodeError`` on JSON that does not parse."""


@dataclass(frozen=True, slots=True)
class Dialect(UpstreamDialect):
    parse_request: Callable[[Any], ChatRequest]
    render_response: Callable[[ChatResponse, RenderContext], bytes]
    stream_renderer: Callable[[RenderContext], StreamRenderer]
    render_error: Callable[[DragomanError], tuple[int, bytes]]
    id_prefix: str
    forward: Forward | None = None
    """Its clients' requests may be forwarded as is to an upstream of the same dialect."""

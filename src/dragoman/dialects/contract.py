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

Upstream-only dialects (Bedrock Converse, Gemini, Ollama) have the egress half only.
Shared helpers live next to this module: ``framing`` (SSE frames, JSON), ``fields``
(request field validators), ``data_urls``, ``effort`` (reasoning effort and thinking
budgets), ``tool_args`` (tool arguments as JSON text and objects).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from ..core import ChatRequest, ChatResponse, DragomanError, StreamEvent


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


@dataclass(frozen=True, slots=True)
class UpstreamDialect:
    """The egress half: all an HTTP provider needs. Upstream-only wire formats (Bedrock
    Converse, Gemini…) provide just this; client-facing dialects are full ``Dialect``s."""

    name: str
    render_request: Callable[[ChatRequest], dict[str, Any]]
    parse_response: Callable[[Any], ChatResponse]
    stream_parser: Callable[[], StreamParser]
    parse_error: Callable[[int, bytes], DragomanError]


@dataclass(frozen=True, slots=True)
class Dialect(UpstreamDialect):
    parse_request: Callable[[Any], ChatRequest]
    render_response: Callable[[ChatResponse, RenderContext], bytes]
    stream_renderer: Callable[[RenderContext], StreamRenderer]
    render_error: Callable[[DragomanError], tuple[int, bytes]]
    id_prefix: str

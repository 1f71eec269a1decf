"""The OpenAI Chat Completions dialect (``POST /v1/chat/completions``), both directions.

ingress: ``parse_request``, ``render_response``, ``StreamRenderer``, ``render_error``
egress:  ``render_request``, ``parse_response`` (``parse_response_bytes``), ``StreamParser``,
         ``parse_error``
"""

from __future__ import annotations

from ..contract import Dialect
from .egress import render_request
from .forward import FORWARD
from .ingress import parse_request
from .parse import parse_error, parse_response, parse_response_bytes
from .parse_stream import StreamParser
from .render import render_error, render_response
from .render_stream import StreamRenderer
from .wire import ID_PREFIX, NAME

DIALECT = Dialect(
    name=NAME,
    parse_request=parse_request,
    render_response=render_response,
    stream_renderer=StreamRenderer,
    render_error=render_error,
    render_request=render_request,
    parse_response=parse_response,
    parse_response_bytes=parse_response_bytes,
    stream_parser=StreamParser,
    parse_error=parse_error,
    id_prefix=ID_PREFIX,
    forward=FORWARD,
)

__all__ = [
    "DIALECT", "ID_PREFIX", "NAME", "StreamParser", "StreamRenderer", "parse_error",
    "parse_request", "parse_response", "parse_response_bytes", "render_error", "render_request",
    "render_response",
]

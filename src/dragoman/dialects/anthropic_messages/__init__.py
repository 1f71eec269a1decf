"""Anthropic Messages API dialect (``POST /v1/messages``), both directions.

ingress: ``parse_request`` / ``parse_count_tokens_request``, ``render_response``,
``StreamRenderer``, ``render_error``, ``render_count_tokens``.
egress: ``render_request`` / ``render_count_tokens_request``, ``parse_response``,
``StreamParser``, ``parse_error``.
"""

from __future__ import annotations

from ..contract import Dialect
from .egress import render_count_tokens_request, render_request
from .forward import FORWARD
from .ingress import parse_count_tokens_request, parse_request
from .parse import parse_error, parse_response
from .parse_stream import StreamParser
from .render import render_count_tokens, render_error, render_response
from .render_stream import StreamRenderer
from .wire import ID_PREFIX, NAME, ORIGIN, TOOL_ID_PREFIX

DIALECT = Dialect(
    name=NAME,
    parse_request=parse_request,
    render_response=render_response,
    stream_renderer=StreamRenderer,
    render_error=render_error,
    render_request=render_request,
    parse_response=parse_response,
    stream_parser=StreamParser,
    parse_error=parse_error,
    id_prefix=ID_PREFIX,
    forward=FORWARD,
)

__all__ = [
    "DIALECT", "ID_PREFIX", "NAME", "ORIGIN", "TOOL_ID_PREFIX", "StreamParser",
    "StreamRenderer", "parse_count_tokens_request", "parse_error", "parse_request",
    "parse_response", "render_count_tokens", "render_count_tokens_request", "render_error",
    "render_request", "render_response",
]

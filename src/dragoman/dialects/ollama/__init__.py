"""Ollama's native chat API (``POST /api/chat``), upstream side only. Pure: no I/O.

egress: ``render_request``, ``parse_response``, ``StreamParser`` (one decoded NDJSON line
at a time), ``parse_error`` (``{"error": "..."}``). Wire facts: providers.md § Ollama.
"""

from __future__ import annotations

from ..contract import UpstreamDialect
from .egress import render_request, think_value
from .parse import parse_error, parse_response
from .parse_stream import StreamParser
from .wire import NAME

DIALECT = UpstreamDialect(
    name=NAME,
    render_request=render_request,
    parse_response=parse_response,
    stream_parser=StreamParser,
    parse_error=parse_error,
)

__all__ = ["DIALECT", "NAME", "StreamParser", "parse_error", "parse_response",
           "render_request", "think_value"]

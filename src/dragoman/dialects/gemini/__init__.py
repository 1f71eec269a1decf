"""Google ``generateContent`` dialect (Gemini API and Vertex AI), upstream side only.

egress: ``render_request``, ``parse_response``, ``StreamParser`` (``alt=sse`` chunks),
``parse_error`` (the ``{"error": {code, message, status, details}}`` envelope, with
``RetryInfo.retryDelay`` as the retry delay). No client speaks it to dragoman.
"""

from __future__ import annotations

from ..contract import UpstreamDialect
from .egress import render_request
from .parse import parse_error, parse_response
from .parse_stream import StreamParser
from .wire import (
    NAME,
    ORIGIN,
    SKIP_SIGNATURE,
    error_from_payload,
    is_synthesized,
    synthesize_call_id,
)

DIALECT = UpstreamDialect(
    name=NAME,
    render_request=render_request,
    parse_response=parse_response,
    stream_parser=StreamParser,
    parse_error=parse_error,
)

__all__ = [
    "DIALECT", "NAME", "ORIGIN", "SKIP_SIGNATURE", "StreamParser", "error_from_payload",
    "is_synthesized", "parse_error", "parse_response", "render_request", "synthesize_call_id",
]

"""AWS Bedrock Converse API dialect — upstream only (dragoman speaks it to Bedrock; no
client speaks it to dragoman).

``render_request`` (neutral → body), ``parse_response``, ``StreamParser`` (decoded
event-stream messages → neutral events), ``parse_error`` (status + body, plus the
``x-amzn-ErrorType`` header when given), ``stream_exception``.
"""

from __future__ import annotations

from ..contract import UpstreamDialect
from .egress import DOCUMENT_FORMATS, IMAGE_FORMATS, image_format, render_request
from .parse import parse_error, parse_response, stream_exception
from .parse_stream import StreamParser
from .wire import NAME, ORIGIN, clean_error_type, error_for_type

DIALECT = UpstreamDialect(
    name=NAME,
    render_request=render_request,
    parse_response=parse_response,
    stream_parser=StreamParser,
    parse_error=parse_error,
)

__all__ = [
    "DIALECT", "DOCUMENT_FORMATS", "IMAGE_FORMATS", "NAME", "ORIGIN", "StreamParser",
    "clean_error_type", "error_for_type", "image_format", "parse_error", "parse_response",
    "render_request", "stream_exception",
]

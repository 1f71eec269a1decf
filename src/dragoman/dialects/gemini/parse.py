"""Egress input: ``generateContent`` answers and the ``{"error": {code, message, status,
details}}`` envelope as neutral values.

A whole answer has the shape of a stream chunk, so it is read as a one-chunk stream by
``parse_stream.StreamParser`` and collected.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import msgspec

from ...core import (
    ChatResponse,
    Collector,
    DragomanError,
    UpstreamError,
    error_for_status,
)
from .parse_stream import DEFAULT_CALL_PREFIX, StreamParser
from .wire import error_from_payload

_decode = msgspec.json.decode


def parse_response(body: Any, custom_tools: Collection[str] = (),
                   call_prefix: str = DEFAULT_CALL_PREFIX) -> ChatResponse:
    """A non-stream ``generateContent`` answer."""
    if not isinstance(body, dict):
        raise UpstreamError("upstream returned a malformed response body")
    if body.get("error") is not None and not body.get("candidates"):
        raise error_from_payload(502, body["error"])
    cands = body.get("candidates")
    fb = body.get("promptFeedback")
    blocked = isinstance(fb, dict) and bool(fb.get("blockReason"))
    if not (isinstance(cands, list) and cands) and not blocked:
        raise UpstreamError("upstream returned a response without candidates")
    parser = StreamParser(custom_tools, call_prefix)
    c = Collector()
    for ev in parser.feed(None, body):
        c.feed(ev)
    for ev in parser.finish():
        c.feed(ev)
    model = body.get("modelVersion")
    return c.response(parser.response_id or "", model if isinstance(model, str) else "")


def _excerpt(body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text or "(empty body)"


def parse_error(status: int, body: bytes) -> DragomanError:
    """Classify an upstream HTTP failure, keeping Google's message and retry delay."""
    try:
        data = _decode(body)
    except (msgspec.DecodeError, ValueError):
        return error_for_status(status, f"upstream error (HTTP {status}): {_excerpt(body)}")
    if isinstance(data, list) and data:
        data = data[0]  # streaming endpoints may wrap the envelope in an array
    if isinstance(data, dict) and "error" in data:
        return error_from_payload(status, data["error"])
    return error_for_status(status, f"upstream error (HTTP {status}): {_excerpt(body)}")

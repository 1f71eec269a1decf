"""Egress input: an ``/api/chat`` answer or ``{"error": "..."}`` body as neutral values."""

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
    new_id,
)
from .parse_stream import StreamParser
from .wire import error_message

_decode = msgspec.json.decode


def parse_response(body: Any, custom_tools: Collection[str] = ()) -> ChatResponse:
    """A non-stream answer: the same object as the last stream line, whole."""
    if not isinstance(body, dict):
        raise UpstreamError("upstream returned a malformed response body")
    if body.get("error") is not None:
        raise UpstreamError(error_message(body["error"]))
    parser = StreamParser(custom_tools)
    c = Collector()
    events = parser.feed(None, {**body, "done": True})
    for ev in events:
        c.feed(ev)
    model = body.get("model")
    return c.response(new_id("ollama-"), model if isinstance(model, str) else "")


def parse_error(status: int, body: bytes) -> DragomanError:
    try:
        obj = _decode(body) if body else None
    except (msgspec.DecodeError, ValueError):
        obj = None
    if isinstance(obj, dict) and obj.get("error") is not None:
        message = error_message(obj["error"])
    else:
        excerpt = " ".join(body[:200].decode("utf-8", "replace").split())
        message = f"upstream returned HTTP {status}" + (f": {excerpt}" if excerpt else "")
    return error_for_status(status, message)

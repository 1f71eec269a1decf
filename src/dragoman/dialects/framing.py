"""Bytes on the wire: SSE frames and compact JSON, shared by every dialect's renderers."""

from __future__ import annotations

from typing import Any

import msgspec

_encode = msgspec.json.Encoder().encode


def sse(event: str | None, payload: Any) -> bytes:
    """One SSE frame. ``event`` None gives a data-only frame (OpenAI Chat)."""
    body = _encode(payload)
    if event is None:
        return b"data: " + body + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + body + b"\n\n"


def dumps(payload: Any) -> bytes:
    return _encode(payload)


def compact_json(obj: Any) -> str:
    """JSON text with no spaces (how tool arguments are written when an object must
    become a string)."""
    return _encode(obj).decode()

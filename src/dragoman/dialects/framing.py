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


#: A placeholder value for ``FrameTemplate``: a string no payload carries.
HOLE = "\x00dragoman:hole\x00"
_HOLE_JSON = _encode(HOLE)


class FrameTemplate:
    """One kind of frame that differs from event to event in a few values only (a text
    delta: the text, an index, a sequence number). Built from the frame rendered once
    with ``HOLE`` for each varying value, so ``fill`` gives exactly the bytes rendering
    the whole payload would, for a fraction of the cost: only the values are encoded,
    not the envelope around them (bench/README.md, "Translated streams at the relay's
    speed")."""

    __slots__ = ("_between", "_parts")

    def __init__(self, frame: bytes) -> None:
        self._parts = frame.split(_HOLE_JSON)
        self._between = self._parts[-1] + self._parts[0]  # (fill_each: between 2 values)

    def fill(self, *values: Any) -> bytes:
        """The frame with ``values`` in place of its holes, in the order they appear."""
        parts = self._parts
        if len(values) == 1:
            return parts[0] + _encode(values[0]) + parts[1]
        out = [parts[0]]
        for value, part in zip(values, parts[1:], strict=True):
            out.append(_encode(value))
            out.append(part)
        return b"".join(out)

    def fill_each(self, values: list[Any]) -> bytes:
        """``fill`` for each of ``values`` in turn, the frames joined, for a template of one
        hole: the values encoded in a C loop (``map``) and joined with what stands between
        two of them, not two concatenations and a Python call per frame (bench/README.md,
        "A read's frames at once")."""
        parts = self._parts
        return parts[0] + self._between.join(map(_encode, values)) + parts[1]

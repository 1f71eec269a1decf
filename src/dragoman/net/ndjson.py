"""Incremental newline-delimited JSON decoder (Ollama, HTTP-generic streams).

``feed`` takes bytes split anywhere and returns every complete line decoded; blank lines
are skipped; an undecodable line raises ``UpstreamError`` (a malformed frame).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..core import UpstreamError

_decode = msgspec.json.Decoder().decode


class NdjsonDecoder:
    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[Any]:
        buf = self._buf + chunk if self._buf else chunk
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        return [_line(line) for line in lines if line.strip()]

    def close(self) -> list[Any]:
        rest, self._buf = self._buf, b""
        return [_line(rest)] if rest.strip() else []


def _line(line: bytes) -> Any:
    try:
        return _decode(line)
    except msgspec.DecodeError:
        raise UpstreamError("upstream sent a line that is not JSON") from None

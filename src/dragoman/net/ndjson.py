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
    """Lines decoded before an undecodable one in the same chunk are still returned; the
    error is raised by the next ``feed`` or ``close`` (so nothing before it is lost)."""

    __slots__ = ("_buf", "_error")

    def __init__(self) -> None:
        self._buf = b""
        self._error: UpstreamError | None = None

    def feed(self, chunk: bytes) -> list[Any]:
        if self._error is not None:
            raise self._error
        buf = self._buf + chunk if self._buf else chunk
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        try:
            return [_line(line) for line in lines if line.strip()]
        except UpstreamError as e:
            good = []
            for line in lines:
                if line.strip():
                    try:
                        good.append(_decode(line))
                    except msgspec.DecodeError:
                        break
            if not good:
                raise
            self._error, self._buf = e, b""
            return good

    def close(self) -> list[Any]:
        if self._error is not None:
            raise self._error
        rest, self._buf = self._buf, b""
        return [_line(rest)] if rest.strip() else []


def _line(line: bytes) -> Any:
    try:
        return _decode(line)
    except msgspec.DecodeError:
        raise UpstreamError("upstream sent a line that is not JSON") from None

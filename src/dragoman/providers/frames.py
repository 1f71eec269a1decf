"""How an upstream frames a stream: bytes split anywhere → ``(event name, payload)``
frames for a dialect's stream parser."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from ..net import NdjsonDecoder


class FrameDecoder(Protocol):
    """Bytes split anywhere → complete frames ``(event name or None, payload)``, fed to the
    dialect's stream parser (SSE: the ``data`` text; NDJSON: the decoded line). May be
    lazy: a corrupt frame can raise after the good frames before it were yielded."""

    def feed(self, chunk: bytes) -> Iterable[tuple[str | None, Any]]: ...

    def close(self) -> Iterable[tuple[str | None, Any]]: ...


class NdjsonFrames:
    """NDJSON as frames: every decoded line is one ``(None, value)`` frame."""

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = NdjsonDecoder()

    def feed(self, chunk: bytes) -> list[tuple[str | None, Any]]:
        return [(None, v) for v in self._decoder.feed(chunk)]

    def close(self) -> list[tuple[str | None, Any]]:
        return [(None, v) for v in self._decoder.close()]

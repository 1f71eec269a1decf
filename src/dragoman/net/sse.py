"""Incremental Server-Sent Events decoder.

Bytes arrive split anywhere (mid-line, mid-UTF-8 sequence); ``feed`` returns every event
completed by the new bytes and keeps only the unfinished tail. Implements the parts of the
WHATWG grammar LLM APIs use: ``event:``, ``data:`` (multi-line joined by ``\\n``),
comments (``:``), CRLF/LF/CR line ends; ``id:`` and ``retry:`` are ignored.
"""

from __future__ import annotations


class SseDecoder:
    __slots__ = ("_buf", "_data", "_event")

    def __init__(self) -> None:
        self._buf = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[str | None, str]]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            # Normalise CRLF and CR; a trailing lone CR may be the first half of a CRLF.
            keep_cr = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if keep_cr:
                buf = buf[:-1]
                tail_cr = b"\r"
            else:
                tail_cr = b""
        else:
            tail_cr = b""
        out: list[tuple[str | None, str]] = []
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = buf[start:nl]
            start = nl + 1
            if not line:
                if self._data or self._event is not None:
                    out.append((self._event, "\n".join(self._data)))
                self._event = None
                self._data = []
                continue
            if line[0] == 58:  # ':' comment
                continue
            field, sep, value = line.partition(b":")
            if sep and value[:1] == b" ":
                value = value[1:]
            if field == b"data":
                self._data.append(value.decode("utf-8", "replace"))
            elif field == b"event":
                self._event = value.decode("utf-8", "replace")
        self._buf = buf[start:] + tail_cr
        return out

    def close(self) -> list[tuple[str | None, str]]:
        """End of stream: a final event without its blank line is still delivered."""
        out = self.feed(b"\n\n") if self._buf else []
        if not out and (self._data or self._event is not None):
            out.append((self._event, "\n".join(self._data)))
        self._event, self._data, self._buf = None, [], b""
        return out

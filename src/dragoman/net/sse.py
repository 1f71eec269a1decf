"""Incremental Server-Sent Events decoder.

Bytes arrive split anywhere (mid-line, mid-UTF-8 sequence); ``feed`` returns every event
completed by the new bytes and keeps only the unfinished tail. Implements the parts of the
WHATWG grammar LLM APIs use: ``event:``, ``data:`` (multi-line joined by ``\\n``),
comments (``:``), CRLF/LF/CR line ends; ``id:`` and ``retry:`` are ignored.

The unit of work is the frame (the bytes up to a blank line), not the line: nearly every
frame an LLM API sends is ``data: …`` or ``event: …`` + ``data: …``, and those two shapes
are recognised from their line ends (one-byte searches) and sliced out directly; anything
else goes through the line-by-line grammar. That cut the decoder's cost per frame by about
a third (bench/README.md).

``SseRelay`` is the other way to read a stream: not decoded, but relayed as bytes (the
same-dialect pass-through), with a ``FrameWatch`` — the wire's own rules — reading only
the few frames it asks for.
"""

from __future__ import annotations

from typing import Protocol

from ..core import DragomanError, TransportError

Frame = tuple[str | None, str]


class SseDecoder:
    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""  # the unfinished frame (line ends already normalised to LF)

    def feed(self, chunk: bytes) -> list[Frame]:
        buf = self._buf + chunk if self._buf else chunk
        tail_cr = b""
        if buf.find(b"\r") >= 0:
            # Normalise CRLF and CR; a trailing lone CR may be the first half of a CRLF.
            if buf.endswith(b"\r"):
                buf = buf[:-1]
                tail_cr = b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        out: list[Frame] = []
        start = 0
        find = buf.find
        startswith = buf.startswith
        while True:
            # The common shapes are recognised from their first line end (a one-byte
            # search); the blank line that ends any other frame is searched for after.
            nl = find(b"\n", start)
            if nl < 0:
                break
            if startswith(b"data: ", start):
                if startswith(b"\n", nl + 1):
                    out.append((None, buf[start + 6:nl].decode("utf-8", "replace")))
                    start = nl + 2
                    continue
            elif startswith(b"event: ", start) and startswith(b"data: ", nl + 1):
                end = find(b"\n", nl + 1)
                if end >= 0 and startswith(b"\n", end + 1):
                    out.append((buf[start + 7:nl].decode("utf-8", "replace"),
                                buf[nl + 7:end].decode("utf-8", "replace")))
                    start = end + 2
                    continue
            end = find(b"\n\n", start)
            if end < 0:
                break
            _parse_lines(buf[start:end], out)
            start = end + 2
        self._buf = buf[start:] + tail_cr if start < len(buf) or tail_cr else b""
        return out

    def data_frames(self, chunk: bytes) -> list[bytes] | None:
        """``feed`` for a read whose complete frames are all one ``data: …`` line each (an
        OpenAI Chat stream): their data as bytes, split out in one call for the lot, not
        a frame at a time (bench/README.md, "A read's frames at once"). None, with
        nothing consumed, when any frame has another shape or a CR: ``feed`` it instead.

        Every line end of such frames is in the ``\\n\\ndata: `` between two of them, so
        counting both, not splitting, tells the shape; the count and the split are C
        loops."""
        buf = self._buf + chunk if self._buf else chunk
        if buf.find(b"\r") >= 0:
            return None
        cut = buf.rfind(b"\n\n")
        if cut < 0:  # no frame complete yet
            self._buf = buf
            return []
        region = buf[:cut]
        if not region.startswith(b"data: ") \
                or region.count(b"\n") != 2 * region.count(b"\n\ndata: "):
            return None
        self._buf = buf[cut + 2:]
        return region[6:].split(b"\n\ndata: ")

    def close(self) -> list[Frame]:
        """End of stream: a final event without its blank line is still delivered."""
        out = self.feed(b"\n\n") if self._buf else []
        self._buf = b""
        return out


def _parse_lines(frame: bytes, out: list[Frame]) -> None:
    """The general grammar for one frame. A frame may begin with blank lines (a stream's
    leading newline, a third newline between frames): those end no event."""
    event: str | None = None
    data: list[str] = []
    for line in frame.split(b"\n"):
        if not line:
            if data or event is not None:
                out.append((event, "\n".join(data)))
            event, data = None, []
            continue
        if line[0] == 58:  # ':' comment
            continue
        field, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            data.append(value.decode("utf-8", "replace"))
        elif field == b"event":
            event = value.decode("utf-8", "replace")
    if data or event is not None:
        out.append((event, "\n".join(data)))


# --- relaying a stream as bytes ------------------------------------------------------------


class FrameWatch(Protocol):
    """What a relay asks of the wire it carries (one object per stream): which frames to
    read, what they mean, and how that wire ends a stream that broke."""

    watch: bytes
    """Frames that contain this are read (``read``)…"""
    unless: bytes
    """…unless every mention of ``watch`` in them is this."""

    def read(self, data: bytes) -> bool:
        """A watched frame's data; False drops the frame (it is not relayed)."""
        ...

    def is_terminal(self, event: bytes | None, data: bytes) -> bool:
        """This (last) frame ends the stream as the wire says a stream ends."""
        ...

    def failure(self, err: DragomanError, first: bytes | None, last: bytes | None) -> bytes:
        """The frame(s) that end a broken stream in-band, given the data of the stream's
        first and last frames."""
        ...


def frame_fields(frame: bytes) -> tuple[bytes | None, bytes]:
    """(event name, data) of one SSE frame (``data:`` lines joined by newlines)."""
    event: bytes | None = None
    data: list[bytes] = []
    for line in frame.split(b"\n"):
        line = line.rstrip(b"\r")
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value
    return event, b"\n".join(data)


class SseRelay:
    """Relays an SSE stream as bytes, whole frames at a time, and lets a ``FrameWatch``
    read the few frames it cares about.

    ``feed`` returns the bytes to send on: every complete frame received so far (a frame
    cut between two network reads waits for its end, so nothing half-formed is ever sent
    and an error can always be appended cleanly). Per chunk that costs one ``rfind`` for
    the last frame boundary and one search for the watched bytes; frames are split and
    handed to the watch only where those appear (and not only as ``unless``).
    """

    __slots__ = ("_carry", "_first_region", "_last_region", "_sep", "last_data",
                 "last_event", "terminal", "watch")

    def __init__(self, watch: FrameWatch) -> None:
        self.watch = watch
        self._sep = b""
        self._carry = b""
        self._first_region: bytes | None = None
        self._last_region: bytes | None = None
        self.last_event: bytes | None = None
        self.last_data: bytes | None = None
        self.terminal = False
        """The stream ended as its wire says (known after ``end`` or ``fail``)."""

    def feed(self, chunk: bytes) -> bytes:
        buf = self._carry + chunk if self._carry else chunk
        sep = self._sep
        if not sep:
            # The first line end tells how this upstream ends its lines (LF or CRLF).
            nl = buf.find(b"\n")
            if nl < 0:
                self._carry = buf
                return b""
            sep = self._sep = b"\r\n\r\n" if nl > 0 and buf[nl - 1] == 13 else b"\n\n"
        cut = buf.rfind(sep)
        if cut < 0:
            self._carry = buf
            return b""
        cut += len(sep)
        region = buf[:cut]
        self._carry = buf[cut:]
        if self._first_region is None:
            self._first_region = region
        if b"data" in region:  # not only blank lines or keep-alive comments
            self._last_region = region
        watch = self.watch
        if watch.watch in region and region.count(watch.watch) != region.count(watch.unless):
            region = self._read(region)
        return region

    def _read(self, region: bytes) -> bytes:
        """Hand the watch just the frames of ``region`` that mention its bytes (found by
        searching, not by splitting the region); return the region without any frame it
        dropped."""
        sep, n = self._sep, len(self._sep)
        watch = self.watch
        needle, unless = watch.watch, watch.unless
        drops: list[tuple[int, int]] = []
        pos = region.find(needle)
        while pos >= 0:
            start = region.rfind(sep, 0, pos)
            start = 0 if start < 0 else start + n
            end = region.find(sep, pos) + n  # the region ends with sep: always found
            frame = region[start:end - n]
            if frame.count(needle) != frame.count(unless) \
                    and not watch.read(frame_fields(frame)[1]):
                drops.append((start, end))
            pos = region.find(needle, end)
        if not drops:
            return region
        kept: list[bytes] = []
        at = 0
        for start, end in drops:
            kept.append(region[at:start])
            at = end
        kept.append(region[at:])
        out = b"".join(kept)
        return out if out.strip() else b""

    def _check_last(self) -> None:
        """Read the last frame that carries an event or data (comments and blank frames,
        such as keep-alives, do not count)."""
        region = self._last_region
        if region is None:
            return
        for frame in reversed(region.split(self._sep)):
            event, data = frame_fields(frame)
            if event is not None or data:
                self.last_event, self.last_data = event, data
                self.terminal = self.watch.is_terminal(event, data)
                return

    def _failure(self, err: DragomanError) -> bytes:
        first = self._first_region
        first_data = frame_fields(first.split(self._sep, 1)[0])[1] \
            if first is not None else None
        return self.watch.failure(err, first_data, self.last_data)

    def end(self) -> bytes:
        """The upstream body ended: the unterminated rest (as a frame), then an error if
        the stream never reached its terminal frame."""
        out = b""
        if self._carry.strip():
            out = self.feed(self._sep or b"\n\n")
        self._check_last()
        if self.terminal:
            return out
        return out + self._failure(TransportError("upstream stream ended early"))

    def fail(self, err: DragomanError) -> bytes:
        """The upstream broke off mid-stream: drop the half frame, end in-band."""
        self._carry = b""
        self._check_last()
        if self.terminal:
            return b""
        return self._failure(err)

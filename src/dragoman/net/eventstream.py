"""Incremental decoder of the AWS event stream (``application/vnd.amazon.eventstream``),
the binary framing of Bedrock's ConverseStream and InvokeModelWithResponseStream.

One frame (all integers big-endian, CRC = zlib CRC-32)::

    | total_len u32 | headers_len u32 | prelude_crc u32 = crc32(first 8 bytes) |
    | headers (headers_len bytes) | payload (total_len - headers_len - 16 bytes) |
    | message_crc u32 = crc32(every preceding byte of the frame) |

    header = name_len u8 · name (utf-8) · type u8 · value
    types: 0 true, 1 false (no value) · 2 int8 · 3 int16 · 4 int32 · 5 int64 ·
           6 bytes (u16 len) · 7 string (u16 len, utf-8) · 8 timestamp (int64 ms) ·
           9 uuid (16 bytes)

``feed`` takes bytes split anywhere and returns every frame they complete. The prelude is
checked (CRC, botocore's limits: headers <= 128 KiB, payload <= 24 MiB) as soon as its 12
bytes are in, so a corrupt or absurd length fails at once instead of waiting for bytes
that will never come. Any corruption raises ``UpstreamError``, after which the decoder
refuses further input; frames completed before the corruption in the same chunk are still
returned, and the error is raised by the next call (``check``, ``feed`` or ``close``), so
a caller can deliver them first. ``close`` raises ``TransportError`` when the stream ended
inside a frame.
"""

from __future__ import annotations

import struct
import zlib

from ..core import TransportError, UpstreamError

MAX_HEADERS_LENGTH = 128 * 1024
MAX_PAYLOAD_LENGTH = 24 * 1024 * 1024
_PRELUDE = struct.Struct(">III")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_MIN_FRAME = 16  # prelude (12) + message CRC (4)

HeaderValue = bool | int | bytes | str


class EventStreamMessage:
    """One decoded frame: its headers and raw payload."""

    __slots__ = ("headers", "payload")

    def __init__(self, headers: dict[str, HeaderValue], payload: bytes) -> None:
        self.headers = headers
        self.payload = payload

    def header(self, name: str) -> str | None:
        """A string header (``:message-type``, ``:event-type``…), None if absent."""
        v = self.headers.get(name)
        return v if isinstance(v, str) else None

    @property
    def message_type(self) -> str:
        return self.header(":message-type") or "event"

    def __repr__(self) -> str:
        return f"EventStreamMessage(headers={self.headers!r}, payload={len(self.payload)} bytes)"


#: Distinct header blocks one decoder remembers. A stream repeats a handful of blocks (the
#: same ``:event-type``/``:content-type``/``:message-type`` on every delta), so parsing
#: each block once and looking it up by its bytes after that nearly halved the decoder's
#: cost per frame (bench/README.md). Messages share the parsed dict: it is never mutated.
_HEADER_CACHE = 32


class EventStreamDecoder:
    __slots__ = ("_buf", "_error", "_headers")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._error: UpstreamError | None = None
        self._headers: dict[bytes, dict[str, HeaderValue]] = {}

    def check(self) -> None:
        """Raise the corruption found by the last ``feed``, if any."""
        if self._error is not None:
            raise self._error

    def feed(self, chunk: bytes) -> list[EventStreamMessage]:
        self.check()
        buf = self._buf
        buf += chunk
        out: list[EventStreamMessage] = []
        pos, end = 0, len(buf)
        try:
            with memoryview(buf) as view:
                while end - pos >= _PRELUDE.size:
                    total, hlen, pcrc = _PRELUDE.unpack_from(view, pos)
                    if zlib.crc32(view[pos:pos + 8]) != pcrc:
                        raise _corrupt("prelude CRC mismatch")
                    if hlen > MAX_HEADERS_LENGTH:
                        raise _corrupt(f"headers of {hlen} bytes exceed {MAX_HEADERS_LENGTH}")
                    plen = total - hlen - _MIN_FRAME
                    if plen < 0:
                        raise _corrupt("frame length shorter than its headers")
                    if plen > MAX_PAYLOAD_LENGTH:
                        raise _corrupt(f"payload of {plen} bytes exceeds {MAX_PAYLOAD_LENGTH}")
                    if end - pos < total:
                        break  # the rest of this frame is still on its way
                    crc_at = pos + total - 4
                    if zlib.crc32(view[pos:crc_at]) != _U32.unpack_from(view, crc_at)[0]:
                        raise _corrupt("message CRC mismatch")
                    hstart = pos + _PRELUDE.size
                    block = bytes(view[hstart:hstart + hlen])
                    headers = self._headers.get(block)
                    if headers is None:
                        headers = _parse_headers(memoryview(block))
                        if len(self._headers) < _HEADER_CACHE:
                            self._headers[block] = headers
                    out.append(EventStreamMessage(headers, bytes(view[hstart + hlen:crc_at])))
                    pos += total
        except UpstreamError as e:
            self._error = e  # the buffer is dead: every later call raises this
            if not out:
                raise
            return out
        if pos:
            del buf[:pos]
        return out

    def close(self) -> None:
        """End of input: raise a pending corruption, or if a frame was left unfinished."""
        self.check()
        if self._buf:
            self._buf.clear()
            raise TransportError("upstream event stream ended in the middle of a frame")

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buf)


def _corrupt(why: str) -> UpstreamError:
    return UpstreamError(f"upstream sent a malformed event-stream frame ({why})")


_FIXED = {2: (1, True), 3: (2, True), 4: (4, True), 5: (8, True), 8: (8, True), 9: (16, False)}


def _parse_headers(data: memoryview) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    i, n = 0, len(data)
    while i < n:
        name_len = data[i]
        i += 1
        if i + name_len + 1 > n:
            raise _corrupt("truncated header")
        try:
            name = bytes(data[i:i + name_len]).decode()
        except UnicodeDecodeError:
            raise _corrupt("header name is not UTF-8") from None
        i += name_len
        htype = data[i]
        i += 1
        value: HeaderValue
        if htype == 0:
            value = True
        elif htype == 1:
            value = False
        elif htype in _FIXED:
            size, signed = _FIXED[htype]
            if i + size > n:
                raise _corrupt("truncated header value")
            raw = bytes(data[i:i + size])
            value = int.from_bytes(raw, "big", signed=True) if signed else raw
            i += size
        elif htype == 6 or htype == 7:
            if i + 2 > n:
                raise _corrupt("truncated header value")
            size = _U16.unpack_from(data, i)[0]
            i += 2
            if i + size > n:
                raise _corrupt("truncated header value")
            raw = bytes(data[i:i + size])
            i += size
            if htype == 6:
                value = raw
            else:
                try:
                    value = raw.decode()
                except UnicodeDecodeError:
                    raise _corrupt("string header is not UTF-8") from None
        else:
            raise _corrupt(f"unknown header type {htype}")
        if name in headers:
            raise _corrupt(f"duplicate header {name!r}")
        headers[name] = value
    return headers

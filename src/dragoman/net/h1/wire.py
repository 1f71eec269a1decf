"""The bytes of HTTP/1.1 the client writes and reads outside the parser: request heads
(with injection refused), response heads split into fields, gzip/deflate bodies inflated
within a bound, and the client's errors."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any, TypeAlias

from multidict import CIMultiDict, CIMultiDictProxy

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class H1Error(Exception):
    """The exchange failed on the wire; the message says how (never a URL or header)."""


class H1Timeout(H1Error):
    """A timeout of the exchange ran out."""


class StaleConnection(H1Error):
    """A reused connection closed before a byte of the answer: safe to retry when the
    method is idempotent."""


Headers: TypeAlias = Mapping[str, str] | tuple[tuple[str, str], ...]
"""Request headers: a mapping, or its items as a tuple of pairs (a caller that sends the
same headers on every request keeps them so: the head's cache key is then the tuple
itself, not one built per request)."""

#: request heads built so far, without the body's length: (method, target, host, headers)
#: → (head up to the length line, whether the caller set Content-Length). A gateway
#: sends the same few heads over and over (one per model and mode), so most requests
#: neither build nor check one.
_HEADS: dict[tuple[object, ...], tuple[bytes, bool]] = {}
_HEADS_KEPT = 256


def request_head(method: str, target: str, host: str, headers: Headers | None,
                 body_len: int | None) -> bytes:
    """The request line and headers. ``Host`` and ``Content-Length`` are added unless the
    caller set them; a CR, LF or NUL anywhere in a name or value is refused."""
    pairs = None if not headers else headers if isinstance(headers, tuple) \
        else tuple(headers.items())
    key = (method, target, host, pairs)
    hit = _HEADS.get(key)
    if hit is None:
        hit = _head(method, target, host, pairs)
        if len(_HEADS) >= _HEADS_KEPT:
            _HEADS.clear()
        _HEADS[key] = hit
    head, has_length = hit
    if body_len is not None and not has_length:
        return head + b"Content-Length: %d\r\n\r\n" % body_len
    return head + b"\r\n"


def _head(method: str, target: str, host: str,
          headers: tuple[tuple[str, str], ...] | None) -> tuple[bytes, bool]:
    parts = [method, " ", target, " HTTP/1.1\r\n"]
    has_host = has_length = False
    lines = 1
    if headers:
        for k, v in headers:
            n = len(k)
            if n == 4 and k.lower() == "host":
                has_host = True
            elif n == 14 and k.lower() == "content-length":
                has_length = True
            parts += (k, ": ", v, "\r\n")
            lines += 1
    if not has_host:
        parts += ("Host: ", host, "\r\n")
        lines += 1
    if " " in target:
        raise ValueError("the request target contains a space (not percent-encoded)")
    text = "".join(parts)
    # Every line ends with exactly one CR LF of ours: any other is injected.
    if text.count("\n") != lines or text.count("\r") != lines or "\0" in text:
        raise ValueError("a request header name or value contains CR, LF or NUL")
    return text.encode(), has_length


def split_head(head: bytes) -> list[tuple[str, str]]:
    """The header fields of a response head (status line first, CR LF line ends)."""
    out = []
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            out.append((name.strip().decode("latin-1"),
                        value.strip().decode("utf-8", "surrogateescape")))
    return out


def headers_of(head: bytes) -> CIMultiDictProxy[str]:
    """The response head's fields as a case-insensitive multidict."""
    return CIMultiDictProxy(CIMultiDict(split_head(head)))


class TooBig(Exception):
    """Inflating would pass the room given."""


class Inflater:
    """gzip or deflate, inflated at most ``room`` bytes at a time: read back-pressure
    bounds the compressed bytes buffered, this bounds what they inflate to (a small
    compressed read can otherwise inflate to gigabytes)."""

    __slots__ = ("_d",)

    def __init__(self, wbits: int | None) -> None:
        """``wbits`` None: ``deflate``, zlib-wrapped by the RFC and raw in practice, told
        apart by its first byte."""
        self._d: Any = None if wbits is None else zlib.decompressobj(wbits)

    def decompress(self, data: bytes, room: int) -> bytes:
        d = self._d
        if d is None:
            if not data:
                return b""
            raw = (data[0] & 0x0F) != 8
            d = self._d = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        out = d.decompress(data, max(room, 1))
        if d.unconsumed_tail:
            raise TooBig
        return bytes(out)

    def flush(self) -> bytes:
        return bytes(self._d.flush()) if self._d is not None else b""

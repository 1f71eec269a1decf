"""The ASGI plumbing the routes share: reading a bounded (maybe compressed) body,
sending JSON and errors in the caller's dialect."""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import msgspec
import zstandard

from ..auth import ANONYMOUS, AuthResolver, Principal, RequestInfo
from ..auth.errors import AuthError, repeated_credentials
from ..core import DragomanError, ErrorKind, InvalidRequest, RequestTooLarge
from ..dialects.contract import Dialect
from .json_depth import MAX_JSON_DEPTH, nests_deeper_than

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_decode_json = msgspec.json.Decoder().decode


#: Headers that name the caller: a request may carry each at most once.
CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key"})


def request_info(scope: Scope) -> RequestInfo:
    """The resolver's view of an ASGI request (headers decoded once, names lower-case).
    A repeated credential header is refused here, before any resolver sees the request."""
    client = scope.get("client")
    headers: dict[str, str] = {}
    for k, v in scope["headers"]:
        name = k.decode("latin-1")
        if name in headers and name in CREDENTIAL_HEADERS:
            raise repeated_credentials(name)
        headers[name] = v.decode("latin-1")
    return RequestInfo(method=scope["method"], path=scope["path"], headers=headers,
                       client=client[0] if client else None)


async def authenticate(auth: AuthResolver | None, scope: Scope) -> Principal:
    """Who is calling (``GatewayState.authenticate``): ``auth``'s principal for the
    request, or the anonymous tenant when the gateway has no resolver. Here, beside the
    body reading, because every authenticated route runs it."""
    info = request_info(scope)  # (refuses a repeated credential even when none counts)
    if auth is None:
        return ANONYMOUS
    return await auth.resolve(info)


def header(scope: Scope, name: bytes) -> str | None:
    """First value of a request header (``name`` lower-case)."""
    for k, v in scope["headers"]:
        if k == name:
            return v.decode("latin-1")
    return None


async def read_body(receive: Receive, scope: Scope, limit: int) -> bytes:
    """The whole request body, refused past ``limit`` bytes (before and after
    decompression, so a small zip bomb cannot expand without bound)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ClientGone()
        body = msg.get("body", b"")
        if body:
            size += len(body)
            if size > limit:
                await _drain(receive, msg)
                raise RequestTooLarge(f"Request body too large: the limit is {limit} bytes.")
            chunks.append(body)
        if not msg.get("more_body", False):
            break
    raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    encoding = header(scope, b"content-encoding")
    if encoding and encoding.lower() != "identity":
        raw = decompress(raw, encoding.lower(), limit)
    return raw


_DRAIN_MAX = 64 * 1024 * 1024


async def _drain(receive: Receive, msg: Message) -> None:
    """Read and drop the rest of an oversized body (up to a bound) before answering 413:
    a server that answers mid-upload and closes makes the client see a connection reset
    instead of our error."""
    dropped = 0
    while msg.get("more_body", False) and dropped < _DRAIN_MAX:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ClientGone()
        dropped += len(msg.get("body", b""))


def decompress(raw: bytes, encoding: str, limit: int) -> bytes:
    try:
        if encoding in ("gzip", "x-gzip", "deflate"):
            d = zlib.decompressobj(wbits=47 if encoding != "deflate" else 15)
            out = d.decompress(raw, limit + 1)
        elif encoding == "zstd":
            with zstandard.ZstdDecompressor().stream_reader(raw) as reader:
                out = reader.read(limit + 1)
        else:
            raise InvalidRequest(f"Unsupported Content-Encoding: {encoding[:40]}.")
    except (zlib.error, zstandard.ZstdError):
        raise InvalidRequest(f"The request body is not valid {encoding} data.") from None
    if len(out) > limit:
        raise RequestTooLarge(f"Request body too large: the limit is {limit} bytes.")
    return out


def parse_json(raw: bytes) -> Any:
    if not raw:
        raise InvalidRequest("The request body is empty: expected a JSON object.")
    # (a level takes two bytes at least: a shorter body is settled without the call)
    if len(raw) > 2 * MAX_JSON_DEPTH and nests_deeper_than(raw, MAX_JSON_DEPTH):
        raise InvalidRequest(f"The JSON body of your request nests deeper than "
                             f"{MAX_JSON_DEPTH} levels (or its brackets do not balance).")
    try:
        return _decode_json(raw)
    except (msgspec.DecodeError, RecursionError):  # (the latter cannot happen: depth checked)
        raise InvalidRequest(
            "We could not parse the JSON body of your request. The body must be valid JSON."
        ) from None


class ClientGone(Exception):
    """The client disconnected before we answered."""


async def send_bytes(send: Send, status: int, body: bytes, content_type: bytes,
                     extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, body: bytes, status: int = 200,
                    extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
    await send_bytes(send, status, body, b"application/json", extra)


def error_headers(err: DragomanError) -> list[tuple[bytes, bytes]]:
    h: list[tuple[bytes, bytes]] = []
    if err.retry_after is not None:
        h.append((b"retry-after", str(max(1, round(err.retry_after))).encode()))
        h.append((b"retry-after-ms", str(int(err.retry_after * 1000)).encode()))
    if err.kind is ErrorKind.BUDGET_EXHAUSTED:
        # A 429 the SDKs would retry at once; a spent budget does not refill in seconds.
        h.append((b"x-should-retry", b"false"))
    if isinstance(err, AuthError) and err.status in (401, 403):
        # RFC 6750 §3: the challenge names what was wrong (never the token itself).
        h.append((b"www-authenticate", err.challenge().encode("latin-1", "replace")))
    elif err.status == 401:
        h.append((b"www-authenticate", b'Bearer realm="dragoman"'))
    return h


async def send_error(send: Send, dialect: Dialect, err: DragomanError,
                     extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
    status, body = dialect.render_error(err)
    await send_json(send, body, status, [*error_headers(err), *extra])

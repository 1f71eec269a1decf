"""JSON calls to identity providers and secret stores over the shared HTTP transport,
with every failure classified into the auth error tree (which is what lets
``ChainedAuth`` tell "the issuer is down" from "this token is bad")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import msgspec

from ..core import DragomanError
from ..net import HttpClient
from .errors import Provider, RateLimited, Transport

#: Discovery documents, key sets, introspection answers and KV entries are small; a
#: bigger body is a misbehaving (or hostile) server, not data to buffer.
MAX_BODY = 1 << 20


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


async def call_json(client: HttpClient, method: str, url: str, *, what: str,
                    form: Mapping[str, str] | None = None, json: Any = None,
                    headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
    """``(status, decoded JSON or None)`` for any status below 500 except 429; 429 raises
    ``RateLimited``, 5xx and network failures ``Transport``, an oversized body
    ``Provider``. ``what`` names the service in messages (never a URL with secrets)."""
    h = {"accept": "application/json"}
    body: bytes | None = None
    if form is not None:
        body = urlencode(form).encode()
        h["content-type"] = "application/x-www-form-urlencoded"
    elif json is not None:
        body = msgspec.json.encode(json)
        h["content-type"] = "application/json"
    if headers:
        h.update(headers)
    try:
        resp = await client.request(method, url, body=body, headers=h)
    except DragomanError:
        raise Transport(f"The {what} cannot be reached.") from None
    status = resp.status
    if status == 429 or status >= 500:
        resp.close()
        if status == 429:
            raise RateLimited(f"The {what} is rate limiting the gateway.",
                              retry_after=_retry_after(resp.headers.get("retry-after")))
        raise Transport(f"The {what} is unavailable (HTTP {status}).")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in resp.iter_chunks():
            size += len(chunk)
            if size > MAX_BODY:
                resp.close()
                raise Provider(f"The {what} sent an oversized answer.")
            chunks.append(chunk)
    except DragomanError as e:
        if isinstance(e, Provider):
            raise
        raise Transport(f"The {what} connection broke.") from None
    resp.release()
    raw = b"".join(chunks)
    if not raw:
        return status, None
    try:
        return status, msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return status, None

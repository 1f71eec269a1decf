"""Same-dialect pass-through, the transport: a client's body forwarded upstream and the
upstream's answer relayed as bytes.

The rules are the dialect's own (``Dialect.forward``, in ``dialects/<name>/forward.py``:
what to change in the body, how to read usage, how the dialect ends a broken stream) and
the relaying is ``net.sse.SseRelay``'s; this module posts the body and runs the relay.
An upstream HTTP error becomes a core error, which the server renders in the client's
dialect (an upstream 401 about the gateway's key is still a 502, never the client's
fault).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Protocol

import msgspec

from ..core import ChatRequest, DragomanError, Usage
from ..dialects.contract import Forward
from ..net import HttpClient, UpstreamResponse
from ..net.sse import SseRelay

_encode = msgspec.json.Encoder().encode


class Upstream(Protocol):
    """What forwarding needs of its provider (an ``HttpDialectProvider``)."""

    http: HttpClient

    def path(self, req: ChatRequest, stream: bool) -> str: ...

    def request_headers(self, req: ChatRequest, stream: bool) -> dict[str, str]: ...

    def error_from(self, resp: UpstreamResponse, raw: bytes) -> DragomanError: ...


class Passthrough:
    """One request forwarded as bytes. The server calls ``complete()`` (the upstream's
    body) when ``streaming`` is false, else iterates ``stream()`` (the upstream's frames);
    ``usage`` and ``outcome`` (``ok`` or the kind of an in-band failure) are known
    afterwards."""

    __slots__ = ("_body", "_forward", "_provider", "_req", "_withhold", "outcome",
                 "streaming", "usage")

    def __init__(self, provider: Upstream, forward: Forward, req: ChatRequest,
                 body: bytes, withhold_usage: bool) -> None:
        self._provider = provider
        self._forward = forward
        self._req = req
        self._body = body
        self._withhold = withhold_usage
        self.streaming = bool(req.stream)
        self.usage: Usage | None = None
        self.outcome = "ok"

    async def complete(self) -> bytes:
        p = self._provider
        resp = await p.http.request("POST", p.path(self._req, False), body=self._body,
                                    headers=p.request_headers(self._req, False))
        try:
            raw = await resp.read()
        finally:
            resp.release()
        if resp.status >= 400:
            raise p.error_from(resp, raw)
        self.usage = self._forward.usage_of_body(raw)
        return raw

    async def stream(self) -> AsyncGenerator[bytes, None]:
        """Raises a core error if the upstream fails before answering; after that,
        failures arrive in-band as the dialect's error frames."""
        p = self._provider
        resp = await p.http.request("POST", p.path(self._req, True), body=self._body,
                                    headers=p.request_headers(self._req, True))
        watch = self._forward.stream(self._withhold)
        relay = SseRelay(watch)
        completed = False
        try:
            if resp.status >= 400:
                raise p.error_from(resp, await resp.read())
            try:
                async for chunk in resp.iter_chunks():
                    out = relay.feed(chunk)
                    if out:
                        yield out
                tail = relay.end()
                completed = relay.terminal
                if not completed:
                    self.outcome = "transport"
                elif watch.ended_in_error(relay.last_event, relay.last_data):
                    self.outcome = "upstream"
            except DragomanError as e:
                tail = relay.fail(e)
                self.outcome = e.kind.value
            if tail:
                yield tail
        finally:
            self.usage = watch.usage
            if completed:
                resp.release()
            else:
                resp.close()


def forwarded(provider: Upstream, forward: Forward, req: ChatRequest, body: dict[str, Any],
              model: str) -> Passthrough | None:
    """``req`` (parsed from the client's ``body``) forwarded to ``provider`` as ``model``
    byte for byte, or None when the dialect's rules say it needs translating."""
    planned = forward.request(body, req, model)
    if planned is None:
        return None
    up, withhold = planned
    return Passthrough(provider, forward, req, _encode(up), withhold)

"""Same-dialect pass-through, the transport: a client's body forwarded upstream and the
upstream's answer relayed as bytes.

The rules are the dialect's own (``Dialect.forward``, in ``dialects/<name>/forward.py``:
what to change in the body, how to read usage, how the dialect ends a broken stream), the
relaying is ``net.sse.SseRelay``'s and the call is every provider's (``upstream_call``:
read whole, or stream with the release-or-close rule); this module ties them together.
An upstream HTTP error becomes a core error, which the server renders in the client's
dialect (an upstream 401 about the gateway's key is still a 502, never the client's
fault).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

import msgspec

from ..core import NO_CONTEXT, ChatRequest, DragomanError, RequestContext, Usage
from ..dialects.contract import Forward, ForwardStream
from ..net import HttpClient, UpstreamResponse
from ..net.h1 import Headers
from ..net.sse import SseRelay
from .reads import ReadStream
from .upstream_call import ReadBatches, read_whole

_encode = msgspec.json.Encoder().encode


class Upstream(Protocol):
    """What forwarding needs of its provider (an ``HttpDialectProvider``)."""

    http: HttpClient

    def path(self, req: ChatRequest, stream: bool) -> str: ...

    def send_headers(self, req: ChatRequest, stream: bool,
                     ctx: RequestContext = NO_CONTEXT) -> Headers: ...

    def error_from(self, resp: UpstreamResponse, raw: bytes) -> DragomanError: ...


class _Relaying:
    """The pass-through ``StreamReader`` (``upstream_call``): the upstream's bytes relayed
    frame by frame, and how the stream ended (``outcome``)."""

    __slots__ = ("_relay", "_watch", "outcome")

    def __init__(self, watch: ForwardStream) -> None:
        self._watch = watch
        self._relay = SseRelay(watch)
        self.outcome = "ok"

    @property
    def finished(self) -> bool:
        return self._relay.terminal

    def feed(self, chunk: bytes, out: list[bytes]) -> None:
        relayed = self._relay.feed(chunk)
        if relayed:
            out.append(relayed)

    def end(self, out: list[bytes]) -> None:
        relay = self._relay
        tail = relay.end()
        if tail:
            out.append(tail)
        if not relay.terminal:
            self.outcome = "transport"
        elif self._watch.ended_in_error(relay.last_event, relay.last_data):
            self.outcome = "upstream"

    def fail(self, err: DragomanError, out: list[bytes]) -> None:
        tail = self._relay.fail(err)
        if tail:
            out.append(tail)
        self.outcome = err.kind.value


class Passthrough:
    """One request forwarded as bytes. The server calls ``complete()`` (the upstream's
    body) when ``streaming`` is false, else iterates ``stream()`` (the upstream's frames);
    ``usage`` and ``outcome`` (``ok`` or the kind of an in-band failure) are known
    afterwards."""

    __slots__ = ("_body", "_ctx", "_forward", "_provider", "_req", "_withhold", "outcome",
                 "streaming", "usage")

    def __init__(self, provider: Upstream, forward: Forward, req: ChatRequest,
                 body: bytes, withhold_usage: bool, ctx: RequestContext = NO_CONTEXT) -> None:
        self._provider = provider
        self._forward = forward
        self._req = req
        self._body = body
        self._withhold = withhold_usage
        self._ctx = ctx
        self.streaming = bool(req.stream)
        self.usage: Usage | None = None
        self.outcome = "ok"

    def _send(self, stream: bool) -> Awaitable[UpstreamResponse]:
        """POST the forwarded body (the request is sent when awaited)."""
        p = self._provider
        return p.http.request("POST", p.path(self._req, stream), body=self._body,
                              headers=p.send_headers(self._req, stream, self._ctx))

    async def complete(self) -> bytes:
        raw = await read_whole(await self._send(False), self._provider.error_from)
        self.usage = self._forward.usage_of_body(raw)
        return raw

    def stream(self) -> RelayedChunks:
        """The upstream's frames, relayed (the request is sent when first iterated).
        Raises a core error if the upstream fails before answering; after that, failures
        arrive in-band as the dialect's error frames."""
        watch = self._forward.stream(self._withhold)
        reader = _Relaying(watch)
        return RelayedChunks(self, watch, reader, ReadBatches(
            lambda: self._send(True), self._provider.error_from, reader))


class RelayedChunks(ReadStream[bytes]):
    """``Passthrough.stream``: the relayed frames, one chunk per item (``ReadStream``, as
    for translated events: no async generator, which the event loop registers per
    stream). Closing it (the server always does, at the end as when the client leaves)
    sets the call's ``usage`` and ``outcome``."""

    __slots__ = ("_call", "_ended", "_reader", "_watch")

    def __init__(self, call: Passthrough, watch: ForwardStream, reader: _Relaying,
                 batches: ReadBatches[bytes]) -> None:
        super().__init__(batches)
        self._call = call
        self._watch = watch
        self._reader = reader
        self._ended = False

    async def aclose(self) -> None:
        if self._ended:
            return
        self._ended = True
        await super().aclose()  # (stopped early: the client left)
        call = self._call
        call.usage = self._watch.usage
        call.outcome = self._reader.outcome


def forwarded(provider: Upstream, forward: Forward, req: ChatRequest, body: dict[str, Any],
              model: str, ctx: RequestContext = NO_CONTEXT) -> Passthrough | None:
    """``req`` (parsed from the client's ``body``) forwarded to ``provider`` as ``model``
    byte for byte, or None when the dialect's rules say it needs translating."""
    planned = forward.request(body, req, model)
    if planned is None:
        return None
    up, withhold = planned
    return Passthrough(provider, forward, req, _encode(up), withhold, ctx)

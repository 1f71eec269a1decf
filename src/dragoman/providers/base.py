"""The provider protocol, and the one mechanism HTTP providers share.

Most of an HTTP adapter is "which dialect + which envelope": ``HttpDialectProvider`` does
the request/response/stream plumbing once; an adapter subclass only says where to send
(``path``), how to authenticate (``auth_headers``) and any envelope tweak (``prepare``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping
from functools import partial
from typing import Any, ClassVar, Protocol, runtime_checkable

import msgspec

from ..core import (
    NO_CONTEXT,
    Capabilities,
    ChatRequest,
    ChatResponse,
    DragomanError,
    RequestContext,
    StreamEvent,
    UpstreamError,
)
from ..dialects.contract import Dialect, StreamParser, UpstreamDialect
from ..net import HttpClient, SseDecoder, Timeouts, UpstreamResponse
from ..net.h1 import Headers
from ..net.http import DEFAULT_POOL
from .frames import FrameDecoder, NdjsonFrames
from .passthrough import Passthrough, forwarded
from .reads import ReadStream
from .upstream_call import EventReader, ReadBatches, read_whole, with_retry_after

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

__all__ = ["FrameDecoder", "HttpDialectProvider", "LlmProvider", "NdjsonFrames",
           "upstream_error"]


def upstream_error(dialect: UpstreamDialect, resp: UpstreamResponse, raw: bytes) -> DragomanError:
    """The dialect's reading of an upstream HTTP error, plus the retry delay from the
    response headers (the body parsers only see the body)."""
    return with_retry_after(dialect.parse_error(resp.status, raw), resp)


@runtime_checkable
class LlmProvider(Protocol):
    """What the gateway and agents call. ``stream`` raises a ``DragomanError`` if the
    upstream fails before the first event, and yields a ``StreamError`` event for a
    failure after it; the last event is always ``Finish`` or ``StreamError``.

    ``ctx`` is who asked and what the server knows about the call (tenant, thread, client
    headers meant for the upstream: ``dragoman.core.RequestContext``); callers without a
    server leave it out (``NO_CONTEXT``). A provider written for the older one-argument
    form ``stream(self, req)`` still works: dragoman wraps it where it takes it
    (``dragoman.providers.legacy.with_context``) and calls it without the context."""

    name: str

    def capabilities(self) -> Capabilities: ...

    def stream(self, req: ChatRequest,
               ctx: RequestContext = NO_CONTEXT) -> AsyncIterator[StreamEvent]: ...

    async def complete(self, req: ChatRequest,
                       ctx: RequestContext = NO_CONTEXT) -> ChatResponse: ...

    async def count_tokens(self, req: ChatRequest) -> int | None: ...

    async def aclose(self) -> None: ...


class HttpDialectProvider:
    """An upstream that speaks one of the wire dialects over HTTP+JSON/SSE."""

    dialect: UpstreamDialect
    default_base_url: str = ""
    method: str = "POST"
    passthrough_safe: ClassVar[bool] = False
    """The adapter's envelope is exactly its dialect's plus auth headers, so a client of
    the same dialect may have its body forwarded as is (``providers.passthrough``). Never
    inherited: an adapter that changes the envelope must not forward bodies unless it
    says so."""

    _fixed_headers: ClassVar[bool] = True
    """``request_headers`` and ``auth_headers`` are the base's: every request of one
    kind (streamed or not) carries the same headers, so they are built once (as pairs:
    the HTTP client's head cache keys on them as they are)."""
    _reads_json_itself: ClassVar[bool] = False
    """The adapter overrides ``parse_upstream_response``: its answers are decoded to
    JSON values for it (no typed reading from the bytes)."""

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls.passthrough_safe = bool(cls.__dict__.get("passthrough_safe", False))
        cls._fixed_headers = cls.request_headers is HttpDialectProvider.request_headers \
            and cls.auth_headers is HttpDialectProvider.auth_headers
        cls._reads_json_itself = \
            cls.parse_upstream_response is not HttpDialectProvider.parse_upstream_response

    def __init__(self, *, model: str, base_url: str | None = None, api_key: str | None = None,
                 headers: Mapping[str, str] | None = None,
                 capabilities: Capabilities | None = None, timeouts: Timeouts | None = None,
                 name: str | None = None, max_connections: int = DEFAULT_POOL) -> None:
        self.name = name or type(self).__name__
        self.model = model
        self._api_key = api_key
        self._extra_headers = dict(headers or {})
        self._caps = capabilities or Capabilities()
        self._header_pairs: dict[bool, tuple[tuple[str, str], ...]] = {}
        self.http = HttpClient(base_url or self.default_base_url, timeouts=timeouts,
                               limit=max_connections)

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.http.base_url!r})"

    # --- what adapters override -------------------------------------------------------

    def path(self, req: ChatRequest, stream: bool) -> str:
        raise NotImplementedError

    def auth_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def prepare(self, body: dict[str, Any], req: ChatRequest, stream: bool) -> dict[str, Any]:
        """Last envelope tweaks on the rendered body (stream flag, vendor fields)."""
        body["stream"] = stream
        return body

    def parse_upstream_response(self, body: Any, req: ChatRequest) -> ChatResponse:
        """The upstream's JSON answer → neutral (adapters may pass request context)."""
        return self.dialect.parse_response(body)

    def upstream_stream_parser(self, req: ChatRequest) -> StreamParser:
        return self.dialect.stream_parser()

    def request_headers(self, req: ChatRequest, stream: bool,
                        ctx: RequestContext = NO_CONTEXT) -> dict[str, str]:
        h = {"content-type": "application/json",
             "accept": "text/event-stream" if stream else "application/json"}
        h.update(self.auth_headers())
        h.update(self._extra_headers)
        return h

    # --- the shared mechanism ---------------------------------------------------------

    def capabilities(self) -> Capabilities:
        return self._caps

    def forward(self, req: ChatRequest, body: dict[str, Any],
                ctx: RequestContext = NO_CONTEXT) -> Passthrough | None:
        """The same-dialect fast path: the client's ``body`` (parsed as ``req``) forwarded
        as is under its dialect's rules (``Dialect.forward``), or None when it must be
        translated: another dialect, an envelope that is not the dialect's own (no
        ``passthrough_safe``), a ``send`` that does more (tokens, media, retries: not
        bypassed, as pass-through posts the body itself), a stream to an upstream that
        cannot stream, or a request the dialect's rules say needs changing."""
        dialect = self.dialect
        if not self.passthrough_safe or req.dialect != dialect.name \
                or not isinstance(dialect, Dialect) or dialect.forward is None \
                or type(self).send is not HttpDialectProvider.send \
                or (req.stream and not self.capabilities().streaming):
            return None
        return forwarded(self, dialect.forward, req, body, self.model, ctx)

    def _body(self, req: ChatRequest, stream: bool) -> bytes:
        upstream_req = req if req.model == self.model \
            else msgspec.structs.replace(req, model=self.model)
        return _encode(self.prepare(self.dialect.render_request(upstream_req), req, stream))

    def send(self, req: ChatRequest, stream: bool,
             ctx: RequestContext = NO_CONTEXT) -> Awaitable[UpstreamResponse]:
        """POST one request upstream (sent when awaited). Adapters that need I/O first (a
        token provider, media to fetch) or a second attempt (refresh on 401) override this
        one method, as an ``async def``. This one is not a coroutine function: it hands
        back the client's call, so awaiting it costs no frame of its own."""
        return self.http.request(self.method, self.path(req, stream),
                                 body=self._body(req, stream),
                                 headers=self.send_headers(req, stream, ctx))

    def send_headers(self, req: ChatRequest, stream: bool,
                     ctx: RequestContext = NO_CONTEXT) -> Headers:
        """``request_headers`` as sent: built once per kind of request when they cannot
        change (``_fixed_headers``)."""
        if not self._fixed_headers:
            return self.request_headers(req, stream, ctx)
        pairs = self._header_pairs.get(stream)
        if pairs is None:
            pairs = self._header_pairs[stream] = tuple(
                self.request_headers(req, stream, ctx).items())
        return pairs

    def stream_decoder(self) -> FrameDecoder:
        """How the upstream frames a stream: SSE by default; NDJSON upstreams override."""
        return SseDecoder()

    def error_from(self, resp: UpstreamResponse, raw: bytes) -> DragomanError:
        """An upstream HTTP failure → core error (adapters whose vendor names the error in
        a header, like Bedrock's ``x-amzn-ErrorType``, override it)."""
        return upstream_error(self.dialect, resp, raw)

    def stream_error_from(self, resp: UpstreamResponse, raw: bytes) -> DragomanError:
        """The same for a streaming call (an upstream may word those differently)."""
        return self.error_from(resp, raw)

    async def complete(self, req: ChatRequest,
                       ctx: RequestContext = NO_CONTEXT) -> ChatResponse:
        raw = await read_whole(await self.send(req, False, ctx), self.error_from)
        try:
            return self.response_of(raw, req)
        except DragomanError:
            raise
        except Exception:
            raise UpstreamError("upstream returned a body that is not valid JSON") from None

    def response_of(self, raw: bytes, req: ChatRequest) -> ChatResponse:
        """The upstream's whole JSON answer, as bytes → neutral: read by the dialect's
        typed decode where it has one (``parse_response_bytes``: no dicts built and
        walked) and the adapter does not read the JSON its own way."""
        parse = self.dialect.parse_response_bytes
        if parse is not None and not self._reads_json_itself:
            return parse(raw)
        return self.parse_upstream_response(_decode(raw), req)

    def stream(self, req: ChatRequest,
               ctx: RequestContext = NO_CONTEXT) -> AsyncIterator[StreamEvent]:
        """The upstream's stream read by the dialect's parser (``upstream_call``), one
        upstream read at a time (``ReadStream``); nothing is sent before the first event is
        asked for."""
        return ReadStream(ReadBatches(
            partial(self.send, req, True, ctx), self.stream_error_from,
            EventReader(self.stream_decoder(), self.upstream_stream_parser(req))))

    async def count_tokens(self, req: ChatRequest) -> int | None:
        return None

    async def aclose(self) -> None:
        await self.http.aclose()

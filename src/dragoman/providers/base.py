"""The provider protocol, and the one mechanism HTTP providers share.

Most of an HTTP adapter is "which dialect + which envelope": ``HttpDialectProvider`` does
the request/response/stream plumbing once; an adapter subclass only says where to send
(``path``), how to authenticate (``auth_headers``) and any envelope tweak (``prepare``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

import msgspec

from ..core import (
    Capabilities,
    ChatRequest,
    ChatResponse,
    DragomanError,
    Finish,
    StreamError,
    StreamEvent,
    UpstreamError,
)
from ..dialects.contract import Dialect, StreamParser, UpstreamDialect
from ..net import HttpClient, NdjsonDecoder, SseDecoder, Timeouts, UpstreamResponse
from ..net.http import DEFAULT_POOL
from ..net.retry import retry_after_seconds
from .passthrough import Passthrough, forwarded

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def upstream_error(dialect: UpstreamDialect, resp: UpstreamResponse, raw: bytes) -> DragomanError:
    """The dialect's reading of an upstream HTTP error, plus the retry delay from the
    response headers (the body parsers only see the body)."""
    err = dialect.parse_error(resp.status, raw)
    if err.retry_after is None:
        err.retry_after = retry_after_seconds(resp.headers)
    return err


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


@runtime_checkable
class LlmProvider(Protocol):
    """What the gateway and agents call. ``stream`` raises a ``DragomanError`` if the
    upstream fails before the first event, and yields a ``StreamError`` event for a
    failure after it; the last event is always ``Finish`` or ``StreamError``."""

    name: str

    def capabilities(self) -> Capabilities: ...

    def stream(self, req: ChatRequest) -> AsyncIterator[StreamEvent]: ...

    async def complete(self, req: ChatRequest) -> ChatResponse: ...

    async def count_tokens(self, req: ChatRequest) -> int | None: ...

    async def aclose(self) -> None: ...


class HttpDialectProvider:
    """An upstream that speaks one of the wire dialects over HTTP+JSON/SSE."""

    dialect: UpstreamDialect
    default_base_url: str = ""
    passthrough_safe: ClassVar[bool] = False
    """The adapter's envelope is exactly its dialect's plus auth headers, so a client of
    the same dialect may have its body forwarded as is (``providers.passthrough``). Never
    inherited: an adapter that changes the envelope must not forward bodies unless it
    says so."""

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls.passthrough_safe = bool(cls.__dict__.get("passthrough_safe", False))

    def __init__(self, *, model: str, base_url: str | None = None, api_key: str | None = None,
                 headers: Mapping[str, str] | None = None,
                 capabilities: Capabilities | None = None, timeouts: Timeouts | None = None,
                 name: str | None = None, max_connections: int = DEFAULT_POOL) -> None:
        self.name = name or type(self).__name__
        self.model = model
        self._api_key = api_key
        self._extra_headers = dict(headers or {})
        self._caps = capabilities or Capabilities()
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

    def request_headers(self, req: ChatRequest, stream: bool) -> dict[str, str]:
        h = {"content-type": "application/json",
             "accept": "text/event-stream" if stream else "application/json"}
        h.update(self.auth_headers())
        h.update(self._extra_headers)
        return h

    # --- the shared mechanism ---------------------------------------------------------

    def capabilities(self) -> Capabilities:
        return self._caps

    def forward(self, req: ChatRequest, body: dict[str, Any]) -> Passthrough | None:
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
        return forwarded(self, dialect.forward, req, body, self.model)

    def _body(self, req: ChatRequest, stream: bool) -> bytes:
        upstream_req = msgspec.structs.replace(req, model=self.model)
        return _encode(self.prepare(self.dialect.render_request(upstream_req), req, stream))

    async def send(self, req: ChatRequest, stream: bool) -> UpstreamResponse:
        """POST one request upstream. Adapters that need I/O first (a token provider, media
        to fetch) or a second attempt (refresh on 401) override this one method."""
        return await self.http.request("POST", self.path(req, stream),
                                       body=self._body(req, stream),
                                       headers=self.request_headers(req, stream))

    def stream_decoder(self) -> FrameDecoder:
        """How the upstream frames a stream: SSE by default; NDJSON upstreams override."""
        return SseDecoder()

    def error_from(self, resp: UpstreamResponse, raw: bytes) -> DragomanError:
        """An upstream HTTP failure → core error (adapters whose vendor names the error in
        a header, like Bedrock's ``x-amzn-ErrorType``, override it)."""
        return upstream_error(self.dialect, resp, raw)

    async def complete(self, req: ChatRequest) -> ChatResponse:
        resp = await self.send(req, False)
        try:
            raw = await resp.read()
        finally:
            resp.release()
        if resp.status >= 400:
            raise self.error_from(resp, raw)
        try:
            return self.parse_upstream_response(_decode(raw), req)
        except DragomanError:
            raise
        except Exception:
            raise UpstreamError("upstream returned a body that is not valid JSON") from None

    async def stream(self, req: ChatRequest) -> AsyncIterator[StreamEvent]:
        resp = await self.send(req, True)
        completed = finished = False
        try:
            if resp.status >= 400:
                raise self.error_from(resp, await resp.read())
            decoder = self.stream_decoder()
            parser = self.upstream_stream_parser(req)
            try:
                async for chunk in resp.iter_chunks():
                    for name, data in decoder.feed(chunk):
                        for ev in parser.feed(name, data):
                            if type(ev) is Finish:
                                finished = True
                            yield ev
                for name, data in decoder.close():
                    for ev in parser.feed(name, data):
                        yield ev
                for ev in parser.close():
                    yield ev
                completed = True
            except DragomanError as e:
                yield StreamError(error=e)
        finally:
            # Abandoned mid-stream (client left, error): closing the connection is what
            # tells the upstream to stop generating. Finished (or closed by a consumer
            # that stopped at the terminal event, the upstream's last bytes still on the
            # way): kept for reuse once those are read.
            if completed or finished:
                resp.release()
            else:
                resp.close()

    async def count_tokens(self, req: ChatRequest) -> int | None:
        return None

    async def aclose(self) -> None:
        await self.http.aclose()

"""The provider protocol, and the one mechanism HTTP providers share.

Most of an HTTP adapter is "which dialect + which envelope": ``HttpDialectProvider`` does
the request/response/stream plumbing once; an adapter subclass only says where to send
(``path``), how to authenticate (``auth_headers``) and any envelope tweak (``prepare``).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol, runtime_checkable

import msgspec

from ..core import (
    Capabilities,
    ChatRequest,
    ChatResponse,
    DragomanError,
    StreamError,
    StreamEvent,
    UpstreamError,
)
from ..dialects.base import Dialect, StreamParser
from ..net import HttpClient, SseDecoder, Timeouts, UpstreamResponse

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The upstream's ``retry-after-ms`` (float ms) or ``retry-after`` (seconds or an HTTP
    date), as the vendor SDKs read them; None when absent or unreadable."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def upstream_error(dialect: Dialect, resp: UpstreamResponse, raw: bytes) -> DragomanError:
    """The dialect's reading of an upstream HTTP error, plus the retry delay from the
    response headers (the body parsers only see the body)."""
    err = dialect.parse_error(resp.status, raw)
    if err.retry_after is None:
        err.retry_after = retry_after_seconds(resp.headers)
    return err


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

    dialect: Dialect
    default_base_url: str = ""

    def __init__(self, *, model: str, base_url: str | None = None, api_key: str | None = None,
                 headers: Mapping[str, str] | None = None,
                 capabilities: Capabilities | None = None, timeouts: Timeouts | None = None,
                 name: str | None = None) -> None:
        self.name = name or type(self).__name__
        self.model = model
        self._api_key = api_key
        self._extra_headers = dict(headers or {})
        self._caps = capabilities or Capabilities()
        self.http = HttpClient(base_url or self.default_base_url, timeouts=timeouts)

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

    def _body(self, req: ChatRequest, stream: bool) -> bytes:
        upstream_req = msgspec.structs.replace(req, model=self.model)
        return _encode(self.prepare(self.dialect.render_request(upstream_req), req, stream))

    async def complete(self, req: ChatRequest) -> ChatResponse:
        resp = await self.http.request("POST", self.path(req, False), body=self._body(req, False),
                                       headers=self.request_headers(req, False))
        try:
            raw = await resp.read()
        finally:
            resp.release()
        if resp.status >= 400:
            raise upstream_error(self.dialect, resp, raw)
        try:
            return self.parse_upstream_response(_decode(raw), req)
        except DragomanError:
            raise
        except Exception:
            raise UpstreamError("upstream returned a body that is not valid JSON") from None

    async def stream(self, req: ChatRequest) -> AsyncIterator[StreamEvent]:
        resp = await self.http.request("POST", self.path(req, True), body=self._body(req, True),
                                       headers=self.request_headers(req, True))
        completed = False
        try:
            if resp.status >= 400:
                raise upstream_error(self.dialect, resp, await resp.read())
            decoder = SseDecoder()
            parser = self.upstream_stream_parser(req)
            try:
                async for chunk in resp.iter_chunks():
                    for name, data in decoder.feed(chunk):
                        for ev in parser.feed(name, data):
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
            # tells the upstream to stop generating. Finished: keep it for reuse.
            if completed:
                resp.release()
            else:
                resp.close()

    async def count_tokens(self, req: ChatRequest) -> int | None:
        return None

    async def aclose(self) -> None:
        await self.http.aclose()

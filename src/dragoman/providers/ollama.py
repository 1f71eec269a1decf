"""Ollama's native API: ``POST {base}/api/chat`` (base ``http://127.0.0.1:11434``), NDJSON
streams, no credentials locally (a key, for ollama.com, goes as a bearer token).

Envelope: images given by URL are fetched by dragoman (SSRF-safe, the ``fetch:`` policy)
and sent inline, since Ollama takes only base64; ``keep_alive`` and extra model ``options``
(``num_ctx``…) come from the config; ``think_levels: true`` sends the reasoning effort
(``low``/``medium``/``high``) instead of ``true`` for models that take levels (gpt-oss).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

from ..core import NO_CONTEXT, ChatRequest, ChatResponse, RequestContext
from ..dialects.ollama import DIALECT as OLLAMA
from ..dialects.ollama import StreamParser, parse_response
from ..net import UpstreamResponse
from ..net.fetch import FetchPolicy
from .base import HttpDialectProvider
from .frames import FrameDecoder, NdjsonFrames
from .media import IMAGE_FETCH_POLICY, inline_remote_media
from .registry import ProviderSpec

_LEVEL = {"minimal": "low", "low": "low", "medium": "medium", "high": "high",
          "xhigh": "high", "max": "high"}


class OllamaOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    keep_alive: str | int | None = None
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    think_levels: bool = False


class Ollama(HttpDialectProvider):
    dialect = OLLAMA
    default_base_url = "http://127.0.0.1:11434"

    def __init__(self, *, keep_alive: str | int | None = None,
                 options: dict[str, Any] | None = None, think_levels: bool = False,
                 image_fetch: FetchPolicy = IMAGE_FETCH_POLICY, **kw: Any) -> None:
        super().__init__(**kw)
        self._keep_alive = keep_alive
        self._options = dict(options or {})
        self._think_levels = think_levels
        self._image_fetch = image_fetch

    def path(self, req: ChatRequest, stream: bool) -> str:
        return "/api/chat"

    def request_headers(self, req: ChatRequest, stream: bool,
                        ctx: RequestContext = NO_CONTEXT) -> dict[str, str]:
        h = super().request_headers(req, stream, ctx)
        h["accept"] = "application/x-ndjson" if stream else "application/json"
        return h

    def prepare(self, body: dict[str, Any], req: ChatRequest, stream: bool) -> dict[str, Any]:
        body["stream"] = stream  # Ollama streams unless told not to: always say it
        if self._keep_alive is not None:
            body["keep_alive"] = self._keep_alive
        if self._options:
            body["options"] = {**self._options, **body.get("options", {})}
        if self._think_levels and body.get("think") is True and req.reasoning is not None:
            level = _LEVEL.get(req.reasoning.effort or "")
            if level is not None:
                body["think"] = level
        return body

    def stream_decoder(self) -> FrameDecoder:
        return NdjsonFrames()

    def parse_upstream_response(self, body: Any, req: ChatRequest) -> ChatResponse:
        return parse_response(body, req.custom_tool_names())

    def upstream_stream_parser(self, req: ChatRequest) -> StreamParser:
        return StreamParser(req.custom_tool_names())

    async def send(self, req: ChatRequest, stream: bool,
                   ctx: RequestContext = NO_CONTEXT) -> UpstreamResponse:
        return await super().send(
            await inline_remote_media(req, policy=self._image_fetch), stream, ctx)


def from_spec(spec: ProviderSpec) -> Ollama:
    opts = spec.parse_options(OllamaOptions)
    # URL images go through the gateway-wide ``fetch:`` policy, narrowed to images.
    policy = dataclasses.replace(spec.fetch_policy or IMAGE_FETCH_POLICY,
                                 allowed_content_types=IMAGE_FETCH_POLICY.allowed_content_types)
    return Ollama(**spec.http_kwargs(), keep_alive=opts.keep_alive, options=opts.options,
                  think_levels=opts.think_levels, image_fetch=policy)

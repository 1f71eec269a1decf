"""Anthropic Messages upstream: the dialect plus ``x-api-key`` / ``anthropic-version`` and
the client's ``anthropic-beta`` passed through."""

from __future__ import annotations

from typing import Any

import msgspec

from ..core import NO_CONTEXT, ChatRequest, ChatResponse, RequestContext, UpstreamError
from ..dialects.anthropic_messages import DIALECT as ANTHROPIC_MESSAGES
from ..dialects.anthropic_messages import StreamParser, parse_response
from .base import HttpDialectProvider
from .registry import ProviderSpec, no_options
from .upstream_call import read_whole

ANTHROPIC_VERSION = "2023-06-01"


class Anthropic(HttpDialectProvider):
    """``POST {base}/v1/messages``."""

    dialect = ANTHROPIC_MESSAGES
    passthrough_safe = True
    default_base_url = "https://api.anthropic.com"

    _COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking",
                     "output_config")

    def _messages_path(self) -> str:
        # Accept a base URL given with or without the /v1 suffix.
        return "/messages" if self.http.base_url.endswith("/v1") else "/v1/messages"

    def path(self, req: ChatRequest, stream: bool) -> str:
        return self._messages_path()

    # Anthropic has no free-text tools: the dialect emulates them as a function with one
    # ``input`` string, and needs the request's custom tool names to turn such calls back
    # into custom calls.
    def parse_upstream_response(self, body: Any, req: ChatRequest) -> ChatResponse:
        return parse_response(body, req.custom_tool_names())

    def upstream_stream_parser(self, req: ChatRequest) -> StreamParser:
        return StreamParser(req.custom_tool_names())

    async def count_tokens(self, req: ChatRequest) -> int | None:
        """Ask the upstream's own counter (exact for its models)."""
        full = self.dialect.render_request(msgspec.structs.replace(req, model=self.model))
        body = {k: full[k] for k in self._COUNT_FIELDS if k in full}
        resp = await self.http.request(
            "POST", self._messages_path() + "/count_tokens", body=msgspec.json.encode(body),
            headers=self.request_headers(req, False))
        raw = await read_whole(resp, self.error_from)
        try:
            n = msgspec.json.decode(raw)["input_tokens"]
        except Exception:
            raise UpstreamError("upstream count_tokens answer has no input_tokens") from None
        return int(n)

    def auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self._api_key} if self._api_key else {}

    def request_headers(self, req: ChatRequest, stream: bool,
                        ctx: RequestContext = NO_CONTEXT) -> dict[str, str]:
        h = super().request_headers(req, stream, ctx)
        h.setdefault("anthropic-version", ANTHROPIC_VERSION)
        fwd = ctx.forward_headers
        if fwd:
            beta = fwd.get("anthropic-beta")
            if beta:
                h["anthropic-beta"] = beta
        return h


def from_spec(spec: ProviderSpec) -> Anthropic:
    no_options(spec)
    return Anthropic(**spec.http_kwargs())

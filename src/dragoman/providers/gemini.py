"""Google Gemini API [``gemini``] and Vertex AI [``vertex``]: the ``generateContent``
dialect with two envelopes.

``gemini``  ``POST {base}/{api_version}/models/{model}:generateContent`` (or
            ``:streamGenerateContent?alt=sse``), ``x-goog-api-key`` header — never a
            ``?key=`` query, so the key cannot leak into a logged URL.
``vertex``  ``POST https://{location}-aiplatform.googleapis.com/v1/projects/{project}/
            locations/{location}/publishers/google/models/{model}:generateContent``
            (``global`` → ``aiplatform.googleapis.com``), ``Authorization: Bearer`` with an
            OAuth2 token from google-auth (a key file from ``credentials_file`` or the
            standard credential chain), refreshed before it expires; with an ``api_key`` and
            no project, Vertex express mode (``/v1/publishers/google/models/…``, key header).

What the adapter adds to the pure dialect:

* media by URL: ``gs://`` URIs, Gemini Files API URIs and YouTube links go as ``fileData``
  (Google fetches them); any other image or document URL is fetched by dragoman through
  the SSRF-safe fetcher (config ``fetch:``) and sent inline, because Gemini fetches only
  some hosts and needs each file's MIME type (``fetch_urls: false`` sends them as
  ``fileData`` instead);
* thought signatures: clients of other dialects cannot carry a Gemini signature back, so
  the adapter remembers each function call's signature by call id (bounded, per process)
  and puts it back when the client replays the call; a call it does not know gets Google's
  documented skip value (see the dialect).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import msgspec

from ..core import (
    Capabilities,
    ChatRequest,
    ChatResponse,
    Message,
    Part,
    StreamEvent,
    Thinking,
    ThinkingEnd,
    ToolCall,
    ToolCallStart,
    UpstreamError,
)
from ..core.extras import require_extra
from ..dialects import anthropic_messages
from ..dialects.contract import StreamParser
from ..dialects.gemini import DIALECT as GEMINI
from ..dialects.gemini import ORIGIN, parse_response
from ..dialects.gemini import StreamParser as GeminiStreamParser
from ..net import UpstreamResponse
from ..net.fetch import FetchPolicy
from .base import HttpDialectProvider
from .google_auth import GoogleAccessToken
from .media import IMAGE_FETCH_POLICY, MEDIA_TYPES, inline_remote_media
from .registry import OptionsError, ProviderSpec

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"

#: what current Gemini models do when the config says nothing: a 1M-token window, thinking
DEFAULT_CAPABILITIES = Capabilities(max_context_tokens=1_048_576, thinking=True)

#: URLs Google fetches itself: Cloud Storage, the Gemini Files API, YouTube
_GOOGLE_HOSTED = ("gs://", "https://generativelanguage.googleapis.com/",
                  "https://www.youtube.com/", "https://youtube.com/", "https://youtu.be/")


class GoogleOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Config keys both adapters take beyond the common ones."""

    api_version: str | None = None
    safety_settings: list[dict[str, Any]] | None = None
    fetch_urls: bool = True
    signature_cache: int = 4096


class VertexOptions(GoogleOptions, forbid_unknown_fields=True, kw_only=True):
    project: str | None = None
    location: str = "global"
    credentials_file: str | None = None


# --- thought signatures ------------------------------------------------------------------


class SignatureMemory:
    """Gemini thought signatures by the id of the function call they came on.

    Bounded (oldest forgotten first) and per process: a follow-up served by another worker
    falls back to the skip value, which Gemini accepts."""

    __slots__ = ("_sigs", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._sigs: dict[str, str] = {}

    def remember(self, call_id: str, signature: str) -> None:
        if self._size <= 0:
            return
        self._sigs.pop(call_id, None)
        self._sigs[call_id] = signature
        if len(self._sigs) > self._size:
            del self._sigs[next(iter(self._sigs))]

    def observe(self, parts: Iterable[Part]) -> None:
        """Remember the calls of an answer: a signed ``Thinking`` right before a call."""
        sig: str | None = None
        for p in parts:
            if isinstance(p, ToolCall) and sig is not None:
                self.remember(p.id, sig)
            sig = p.signature if isinstance(p, Thinking) and p.origin == ORIGIN else None

    def restore(self, req: ChatRequest) -> ChatRequest:
        """``req`` with a signed ``Thinking`` put back before each remembered call that the
        client replayed without it (no copy when nothing is missing)."""
        if not self._sigs:
            return req
        messages: list[Message] | None = None
        for i, m in enumerate(req.messages):
            if m.role != "assistant":
                continue
            content = self._restored(m.content)
            if content is not None:
                if messages is None:
                    messages = list(req.messages)
                messages[i] = msgspec.structs.replace(m, content=content)
        return req if messages is None else msgspec.structs.replace(req, messages=messages)

    def _restored(self, content: list[Part]) -> list[Part] | None:
        out: list[Part] | None = None
        signed = False
        for i, p in enumerate(content):
            if isinstance(p, ToolCall) and not signed and p.id in self._sigs:
                if out is None:
                    out = list(content[:i])
                out.append(Thinking(signature=self._sigs[p.id], origin=ORIGIN))
            if out is not None:
                out.append(p)
            signed = isinstance(p, Thinking) and p.origin == ORIGIN and bool(p.signature)
        return out


class _ObservingParser:
    """The dialect's stream parser, remembering signed calls as they stream by."""

    __slots__ = ("_inner", "_memory", "_sig")

    def __init__(self, inner: StreamParser, memory: SignatureMemory) -> None:
        self._inner = inner
        self._memory = memory
        self._sig: str | None = None

    def _watch(self, events: list[StreamEvent]) -> list[StreamEvent]:
        for ev in events:
            if isinstance(ev, ToolCallStart) and self._sig is not None:
                self._memory.remember(ev.id, self._sig)
            self._sig = ev.signature if isinstance(ev, ThinkingEnd) and ev.origin == ORIGIN \
                else None
        return events

    def feed(self, event: str | None, data: Any) -> list[StreamEvent]:
        return self._watch(self._inner.feed(event, data))

    def close(self) -> list[StreamEvent]:
        return self._watch(self._inner.close())


# --- the shared mechanism of both envelopes -------------------------------------------------


class GoogleGenerateContent(HttpDialectProvider):
    """What the Gemini API and Vertex AI adapters share: paths, media, signatures."""

    dialect = GEMINI
    default_api_version = "v1beta"

    def __init__(self, *, options: GoogleOptions | None = None,
                 image_fetch: FetchPolicy = IMAGE_FETCH_POLICY, **kw: Any) -> None:
        if kw.get("capabilities") is None:
            kw["capabilities"] = DEFAULT_CAPABILITIES
        super().__init__(**kw)
        opts = options or GoogleOptions()
        self.api_version = opts.api_version or self.default_api_version
        self._safety = opts.safety_settings
        self._fetch_urls = opts.fetch_urls
        # Gemini takes documents, audio and video inline as well as images.
        self._media_fetch = dataclasses.replace(image_fetch, allowed_content_types=MEDIA_TYPES)
        self.signatures = SignatureMemory(opts.signature_cache)

    def model_path(self) -> str:
        """``/{version}/…/models/{model}``, the part before ``:generateContent``."""
        raise NotImplementedError

    def path(self, req: ChatRequest, stream: bool) -> str:
        verb = ":streamGenerateContent?alt=sse" if stream else ":generateContent"
        return self.model_path() + verb

    def prepare(self, body: dict[str, Any], req: ChatRequest, stream: bool) -> dict[str, Any]:
        # No ``stream`` key: the URL says it. Safety settings are the operator's choice.
        if self._safety:
            body["safetySettings"] = self._safety
        return body

    # --- request context the dialect's parsers need -------------------------------------

    @staticmethod
    def _call_prefix(req: ChatRequest) -> str:
        """Synthesized call ids in the shape the client's own vendor mints."""
        if req.dialect == anthropic_messages.NAME:
            return anthropic_messages.TOOL_ID_PREFIX
        return "call_"

    def parse_upstream_response(self, body: Any, req: ChatRequest) -> ChatResponse:
        resp = parse_response(body, req.custom_tool_names(), self._call_prefix(req))
        self.signatures.observe(resp.content)
        return resp

    def upstream_stream_parser(self, req: ChatRequest) -> StreamParser:
        return _ObservingParser(GeminiStreamParser(req.custom_tool_names(),
                                                   self._call_prefix(req)), self.signatures)

    # --- sending ------------------------------------------------------------------------

    @staticmethod
    def _fetched_by_us(url: str) -> bool:
        return not url.startswith(_GOOGLE_HOSTED)

    async def _ready(self, req: ChatRequest) -> ChatRequest:
        req = self.signatures.restore(req)
        if self._fetch_urls:
            req = await inline_remote_media(req, self._fetched_by_us, self._media_fetch)
        return req

    async def send(self, req: ChatRequest, stream: bool) -> UpstreamResponse:
        return await self._post(await self._ready(req), stream)

    async def _post(self, req: ChatRequest, stream: bool) -> UpstreamResponse:
        return await super().send(req, stream)

    async def _authorize(self) -> None:
        """I/O the request headers need (a fresh token); nothing for a static key."""

    async def count_tokens(self, req: ChatRequest) -> int | None:
        """Google's own counter (``:countTokens``), exact for its models."""
        req = await self._ready(req)
        full = self.dialect.render_request(msgspec.structs.replace(req, model=self.model))
        await self._authorize()
        resp = await self.http.request(
            "POST", self.model_path() + ":countTokens",
            body=msgspec.json.encode(self.count_tokens_body(full)),
            headers=self.request_headers(req, False))
        try:
            raw = await resp.read()
        finally:
            resp.release()
        if resp.status >= 400:
            raise self.error_from(resp, raw)
        try:
            n = msgspec.json.decode(raw)["totalTokens"]
        except Exception:
            raise UpstreamError("upstream countTokens answer has no totalTokens") from None
        return int(n)

    def count_tokens_body(self, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


def _model_segment(model: str) -> str:
    return quote(model.removeprefix("models/"), safe="-._~@")


class GeminiApi(GoogleGenerateContent):
    """The Gemini API (Google AI Studio keys)."""

    default_base_url = GEMINI_BASE_URL

    def model_path(self) -> str:
        return f"/{self.api_version}/models/{_model_segment(self.model)}"

    def auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self._api_key} if self._api_key else {}

    def count_tokens_body(self, body: dict[str, Any]) -> dict[str, Any]:
        body.pop("safetySettings", None)
        return {"generateContentRequest": {"model": f"models/{self.model}", **body}}


class VertexAi(GoogleGenerateContent):
    """Vertex AI's publisher models (Google's Gemini models in a Cloud project)."""

    default_api_version = "v1"

    def __init__(self, *, options: VertexOptions | None = None,
                 token_source: GoogleAccessToken | None = None, **kw: Any) -> None:
        opts = options or VertexOptions()
        location = opts.location
        if not kw.get("base_url"):
            host = "aiplatform.googleapis.com" if location == "global" \
                else f"{location}-aiplatform.googleapis.com"
            kw["base_url"] = f"https://{host}"
        super().__init__(options=opts, **kw)
        self.location = location
        self.project = opts.project
        # An API key replaces OAuth; without a project it is Vertex "express mode".
        self.express = self._api_key is not None and self.project is None
        if self._api_key is None and token_source is None:
            require_extra("vertex", "Vertex AI with Google credentials")
        self._token = None if self._api_key is not None else \
            token_source or GoogleAccessToken(opts.credentials_file)
        self._bearer: str | None = None

    def __repr__(self) -> str:  # never the key or a token
        return (f"VertexAi(model={self.model!r}, project={self.project!r}, "
                f"location={self.location!r})")

    def model_path(self) -> str:
        model = _model_segment(self.model)
        if self.express:
            return f"/{self.api_version}/publishers/google/models/{model}"
        if self.project is None:
            raise UpstreamError("Vertex AI needs a project: set `project` in the config "
                                "(the credentials name none)")
        return (f"/{self.api_version}/projects/{quote(self.project, safe='')}/locations/"
                f"{quote(self.location, safe='')}/publishers/google/models/{model}")

    def auth_headers(self) -> dict[str, str]:
        if self._api_key is not None:
            return {"x-goog-api-key": self._api_key}
        return {"authorization": f"Bearer {self._bearer}"} if self._bearer else {}

    async def _authorize(self) -> None:
        if self._token is None:
            return
        self._bearer = await self._token.token()
        if self.project is None:
            self.project = await self._token.project_id()

    async def _post(self, req: ChatRequest, stream: bool) -> UpstreamResponse:
        await self._authorize()
        resp = await super()._post(req, stream)
        if resp.status != 401 or self._token is None:
            return resp
        # A token Google no longer accepts (revoked, clock skew): refresh once and retry.
        await resp.read()
        resp.release()
        self._token.invalidate()
        await self._authorize()
        return await super()._post(req, stream)

    def count_tokens_body(self, body: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in body.items()
                if k in ("contents", "systemInstruction", "tools", "generationConfig")}


def from_spec(spec: ProviderSpec) -> GoogleGenerateContent:
    if spec.provider == "vertex":
        vopts = spec.parse_options(VertexOptions)
        if spec.api_key is not None and vopts.credentials_file is not None:
            raise OptionsError("give `api_key` (express mode) or `credentials_file`, never "
                               "both - at `$`")
        return VertexAi(options=vopts, **_kwargs(spec))
    opts = spec.parse_options(GoogleOptions)
    if not spec.api_key:
        raise OptionsError("the Gemini API needs `api_key` - at `$`")
    return GeminiApi(options=opts, **_kwargs(spec))


def _kwargs(spec: ProviderSpec) -> dict[str, Any]:
    kw = spec.http_kwargs()
    if spec.fetch_policy is not None:
        kw["image_fetch"] = spec.fetch_policy
    return kw

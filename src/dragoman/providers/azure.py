"""Azure OpenAI: the OpenAI Chat or Responses dialect with Azure's URLs and credentials.

Routes (``api`` option):

``chat``          ``{base}/openai/deployments/{deployment}/chat/completions?api-version=…``
                  (classic, deployment-scoped; the path picks the model)
``responses``     ``{base}/openai/responses?api-version=…`` with ``model`` = the deployment
``v1``            ``{base}/openai/v1/chat/completions`` (the v1 API: plain OpenAI paths,
                  no api-version, ``model`` = the deployment)
``v1_responses``  ``{base}/openai/v1/responses``

Credentials: an ``api-key`` header, or an Entra ID bearer token — static, or asked of a
caller-owned token provider (sync or async, e.g. azure-identity's
``get_bearer_token_provider``) before every request. Never both.

Azure's additions to the OpenAI bodies (``prompt_filter_results``, per-choice
``content_filter_results``, a first stream chunk with empty ``choices``) are ignored by the
dialects' parsers; ``finish_reason: "content_filter"`` and a 400 ``code: "content_filter"``
surface as the content-filter stop reason and an invalid-request error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal
from urllib.parse import quote

import msgspec

from ..core import NO_CONTEXT, ChatRequest, RequestContext
from ..dialects.openai_chat import DIALECT as OPENAI_CHAT
from ..dialects.openai_responses import DIALECT as OPENAI_RESPONSES
from ..net import UpstreamResponse
from .base import HttpDialectProvider
from .callables import call
from .registry import OptionsError, ProviderSpec

Api = Literal["chat", "responses", "v1", "v1_responses"]
TokenProvider = Callable[[], str | Awaitable[str]]

#: api-version defaults: the latest GA for chat, the first that serves the Responses API
CHAT_API_VERSION = "2024-10-21"
RESPONSES_API_VERSION = "2025-04-01-preview"


class AzureOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``azure_openai`` config keys beyond the common ones."""

    deployment: str | None = None
    api_version: str | None = None
    api: Api = "chat"
    azure_ad_token: str | None = None


def _resource_base(base_url: str) -> str:
    """Accept the resource endpoint with or without a trailing ``/openai`` (``/v1``)."""
    base = base_url.rstrip("/")
    for suffix in ("/openai/v1", "/openai"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


class AzureOpenAI(HttpDialectProvider):
    # Never forwarded as is (no ``passthrough_safe``): Azure's additions (an empty-choices
    # first chunk, filter results) must not reach a client that expects plain OpenAI.

    def __init__(self, *, model: str | None = None, base_url: str | None = None,
                 api_key: str | None = None, azure_ad_token: str | None = None,
                 azure_ad_token_provider: TokenProvider | None = None,
                 deployment: str | None = None, api: Api = "chat",
                 api_version: str | None = None, endpoint: str | None = None,
                 **kw: Any) -> None:
        """``endpoint`` is tako's name for ``base_url`` (the resource URL); ``model``
        defaults to the ``deployment`` (the name Azure knows the model by)."""
        if sum(x is not None for x in (api_key, azure_ad_token, azure_ad_token_provider)) > 1:
            raise ValueError("Azure OpenAI takes an api_key or an Entra ID token "
                             "(azure_ad_token / azure_ad_token_provider), never both")
        if (base_url is None) == (endpoint is None):
            raise ValueError("Azure OpenAI needs its resource URL: give `endpoint` "
                             "(or `base_url`), once")
        base_url = base_url or endpoint
        assert base_url is not None
        if not (deployment or model):
            raise ValueError("Azure OpenAI needs a `deployment` (or `model`)")
        self.deployment = deployment or model or ""
        # The deployment name is what Azure reads as ``model`` in a body.
        super().__init__(model=self.deployment, base_url=_resource_base(base_url),
                         api_key=api_key, **kw)
        self.api = api
        self.dialect = OPENAI_RESPONSES if api in ("responses", "v1_responses") else OPENAI_CHAT
        version = api_version or (RESPONSES_API_VERSION if api == "responses"
                                  else CHAT_API_VERSION)
        self._path = {
            "chat": f"/openai/deployments/{quote(self.deployment, safe='')}/chat/completions"
                    f"?api-version={quote(version)}",
            "responses": f"/openai/responses?api-version={quote(version)}",
            "v1": "/openai/v1/chat/completions",
            "v1_responses": "/openai/v1/responses",
        }[api]
        self._ad_token = azure_ad_token
        self._token_provider = azure_ad_token_provider

    def __repr__(self) -> str:  # never a key or token
        return (f"AzureOpenAI(deployment={self.deployment!r}, api={self.api!r}, "
                f"base_url={self.http.base_url!r})")

    def path(self, req: ChatRequest, stream: bool) -> str:
        return self._path

    def auth_headers(self) -> dict[str, str]:
        if self._api_key:
            return {"api-key": self._api_key}
        if self._ad_token:
            return {"authorization": f"Bearer {self._ad_token}"}
        return {}

    def prepare(self, body: dict[str, Any], req: ChatRequest, stream: bool) -> dict[str, Any]:
        body["stream"] = stream
        if not stream:
            body.pop("stream_options", None)
        return body

    async def send(self, req: ChatRequest, stream: bool,
                   ctx: RequestContext = NO_CONTEXT) -> UpstreamResponse:
        if self._token_provider is None:
            return await super().send(req, stream, ctx)
        token = await call(self._token_provider)
        headers = self.request_headers(req, stream, ctx)
        headers["authorization"] = f"Bearer {token}"
        return await self.http.request("POST", self._path, body=self._body(req, stream),
                                       headers=headers)


def from_spec(spec: ProviderSpec) -> AzureOpenAI:
    opts = spec.parse_options(AzureOptions)
    if not spec.base_url:
        raise OptionsError("Azure OpenAI needs `base_url` (https://<resource>.openai.azure.com)"
                           " - at `$`")
    if spec.api_key and opts.azure_ad_token:
        raise OptionsError("give `api_key` or `azure_ad_token`, never both - at `$`")
    kw = spec.http_kwargs()
    kw["base_url"] = spec.base_url
    return AzureOpenAI(**kw, azure_ad_token=opts.azure_ad_token, deployment=opts.deployment,
                       api=opts.api, api_version=opts.api_version)

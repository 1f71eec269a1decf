"""A fake Azure OpenAI resource: the OpenAI fake (``tests/fakes/upstream.py``) behind
Azure's URLs, credentials and additions (providers.md § Azure OpenAI).

Routes:

* ``POST /openai/deployments/{deployment}/chat/completions?api-version=…`` (classic)
* ``POST /openai/responses?api-version=…`` (``model`` = the deployment)
* ``POST /openai/v1/chat/completions``, ``POST /openai/v1/responses`` (the v1 API)

A classic route without ``api-version`` or for an unknown deployment is a 404 in Azure's
envelope. Credentials: ``api-key: AZURE_KEY`` or ``Authorization: Bearer <token>`` with
a token from ``.tokens`` (Entra ID) — both at once is refused, as is neither.

What Azure adds to the OpenAI bytes: every Chat completion carries
``prompt_filter_results`` and per-choice ``content_filter_results``; a Chat stream starts
with a chunk whose ``choices`` is EMPTY (only ``prompt_filter_results``). Scenarios beyond
the OpenAI fake's: ``filtered`` (an answer cut by the content filter: ``finish_reason:
"content_filter"``) and ``filtered400`` (a prompt blocked with a 400 ``content_filter``).
Errors use Azure's shapes (``{"error": {"code": "429", "message": …}}`` with
``retry-after`` and ``retry-after-ms``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from .upstream import CUT, RETRY_AFTER, FakeUpstream, Recorded, data_frame

AZURE_KEY = "azure-fake-key-0123456789abcdef"
AZURE_AD_TOKENS = ("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.entra-fake-token-1",
                   "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.entra-fake-token-2")
DEPLOYMENT = "gpt4o-fake-deploy"
AZURE_MODEL = "gpt-4o-2024-11-20"

_SAFE = {"hate": {"filtered": False, "severity": "safe"},
         "self_harm": {"filtered": False, "severity": "safe"},
         "sexual": {"filtered": False, "severity": "safe"},
         "violence": {"filtered": False, "severity": "safe"}}
_HATE = {**_SAFE, "hate": {"filtered": True, "severity": "high"}}
PROMPT_FILTER = [{"prompt_index": 0, "content_filter_results": _SAFE}]


def _azure_error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


class FakeAzure(FakeUpstream):
    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = {AZURE_AD_TOKENS[0]}

    def vendor_routes(self, app: web.Application) -> None:
        app.router.add_post("/openai/deployments/{deployment}/chat/completions",
                            self._classic_chat)
        app.router.add_post("/openai/responses", self._classic_responses)
        app.router.add_post("/openai/v1/chat/completions", self._chat)
        app.router.add_post("/openai/v1/responses", self._responses)

    # --- routes -------------------------------------------------------------------------

    async def _not_found(self, request: web.Request, api: str, body: dict[str, Any],
                         ) -> web.StreamResponse:
        rec = await self._record(request, api)
        return self._json(rec, body, 404)

    async def _classic_chat(self, request: web.Request) -> web.StreamResponse:
        if "api-version" not in request.query:
            return await self._not_found(request, "chat", _azure_error("404",
                                                                         "Resource not found"))
        if request.match_info["deployment"] != DEPLOYMENT:
            return await self._not_found(request, "chat", _azure_error(
                "DeploymentNotFound", "The API deployment for this resource does not exist. "
                "If you created the deployment within the last 5 minutes, please wait a "
                "moment and try again."))
        return await self._chat(request)

    async def _classic_responses(self, request: web.Request) -> web.StreamResponse:
        if "api-version" not in request.query:
            return await self._not_found(request, "responses",
                                         _azure_error("404", "Resource not found"))
        return await self._responses(request)

    # --- credentials and errors ---------------------------------------------------------

    def _openai_auth(self, rec: Recorded) -> web.Response | None:
        key = rec.headers.get("api-key")
        auth = rec.headers.get("authorization")
        if key is not None and auth is not None:
            ok = False  # "never both"
        elif key is not None:
            ok = key == AZURE_KEY
        else:
            ok = auth is not None and auth.startswith("Bearer ") and auth[7:] in self.tokens
        if ok:
            return None
        return self._json(rec, _azure_error(
            "401", "Access denied due to invalid subscription key or wrong API endpoint. Make "
            "sure to provide a valid key for an active subscription and use a correct regional "
            "API endpoint for your resource."), 401)

    def _openai_http_error(self, rec: Recorded) -> web.Response | None:
        if rec.scenario == "error429":
            return self._json(rec, _azure_error(
                "429", "Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
                "version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 "
                f"pricing tier. Please retry after {RETRY_AFTER} seconds."), 429,
                {"retry-after": RETRY_AFTER, "retry-after-ms": f"{int(RETRY_AFTER) * 1000}"})
        if rec.scenario == "filtered400":
            return self._json(rec, {"error": {
                "message": "The response was filtered due to the prompt triggering Azure "
                "OpenAI's content management policy. Please modify your prompt and retry.",
                "type": None, "param": "prompt", "code": "content_filter", "status": 400,
                "innererror": {"code": "ResponsibleAIPolicyViolation",
                               "content_filter_result": _HATE}}}, 400)
        return super()._openai_http_error(rec)

    # --- Azure's additions to Chat bodies -------------------------------------------------

    def _chat_completion(self, body: dict[str, Any], scen: str) -> dict[str, Any]:
        out = super()._chat_completion(body, "text" if scen == "filtered" else scen)
        out["model"] = AZURE_MODEL
        out["prompt_filter_results"] = PROMPT_FILTER
        out.pop("service_tier", None)
        for choice in out["choices"]:
            if scen == "filtered":
                choice["finish_reason"] = "content_filter"
                choice["content_filter_results"] = _HATE
            else:
                choice["content_filter_results"] = _SAFE
        return out

    def _chat_frames(self, body: dict[str, Any], scen: str) -> AsyncIterator[bytes]:
        inner = super()._chat_frames(body, "text" if scen == "filtered" else scen)

        async def gen() -> AsyncIterator[bytes]:
            # Azure's first chunk: no choices, only the prompt's filter results.
            yield data_frame({"choices": [], "created": 0, "id": "", "model": "",
                              "object": "", "prompt_filter_results": PROMPT_FILTER})
            async for f in inner:
                if f is CUT or not f.startswith(b"data: {"):
                    yield f
                    continue
                try:
                    obj = json.loads(f[6:])
                except ValueError:
                    yield f  # the malformed frame stays malformed
                    continue
                obj.pop("obfuscation", None)
                obj.pop("service_tier", None)
                if obj.get("model"):
                    obj["model"] = AZURE_MODEL
                for choice in obj.get("choices") or ():
                    delta = choice.get("delta") or {}
                    if delta.get("role"):
                        choice["content_filter_results"] = {}
                    elif scen == "filtered" and choice.get("finish_reason") == "stop":
                        choice["finish_reason"] = "content_filter"
                        choice["content_filter_results"] = _HATE
                    else:
                        choice["content_filter_results"] = _SAFE
                yield data_frame(obj)

        return gen()

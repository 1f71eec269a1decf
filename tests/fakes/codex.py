"""A fake ChatGPT Codex backend: ``POST /backend-api/codex/responses``, the Responses SSE
stream of the OpenAI fake (``tests/fakes/upstream.py``) behind ChatGPT's envelope
(providers.md § ChatGPT Codex subscription backend).

What it enforces, as the backend does:

* ``Authorization: Bearer <token>`` with a token from ``.tokens`` (an expired one is a
  401 ``token_expired``) and ``chatgpt-account-id: ACCOUNT_ID``;
* ``OpenAI-Beta: responses=experimental``, an ``originator``, a ``session_id``;
* the body contract, with FastAPI-style ``400 {"detail": ...}``: ``stream: true``,
  ``store: false``, non-empty ``instructions``, no ``max_output_tokens`` /
  ``temperature`` / ``top_p`` / ``metadata``, no ``status`` on input items, a model of
  the plan.

Scenarios are the OpenAI fake's, plus ``done`` (a text answer whose stream ends with
``response.done`` instead of ``response.completed``) and ``usage_limit`` (the plan's quota
is spent: 429 ``usage_limit_reached`` with ``resets_in_seconds``). Non-stream requests do
not exist here (the backend refuses them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from .upstream import (
    RETRY_AFTER,
    FakeUpstream,
    Recorded,
    _has_tool_results,
    _Reject,
    _validate_responses,
)

CODEX_TOKENS = ("eyJhbGciOiJSUzI1NiJ9.chatgpt-fake-access-1.sig",
                "eyJhbGciOiJSUzI1NiJ9.chatgpt-fake-access-2.sig")
ACCOUNT_ID = "8f3e2d1c-0b9a-4e7f-a6b5-c4d3e2f1a0b9"
CODEX_MODELS = frozenset({"gpt-5-codex-fake", "gpt-5-fake"})
USAGE_RESET_SECONDS = 4242


def _detail(message: str) -> dict[str, Any]:
    return {"detail": message}


class FakeCodex(FakeUpstream):
    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = {CODEX_TOKENS[0]}

    def vendor_routes(self, app: web.Application) -> None:
        app.router.add_post("/backend-api/codex/responses", self._codex)

    def _check(self, rec: Recorded) -> tuple[int, dict[str, Any]] | None:
        h = rec.headers
        auth = h.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if not token:
            return 401, _detail("Could not parse your authentication token. Please try "
                                "signing in again.")
        if token not in self.tokens:
            return 401, {"error": {"message": "Provided authentication token is expired. "
                                   "Please try signing in again.", "type": None,
                                   "code": "token_expired", "param": None}, "status": 401}
        if h.get("chatgpt-account-id") != ACCOUNT_ID:
            return 403, _detail("Workspace mismatch for this account.")
        if h.get("openai-beta") != "responses=experimental" or not h.get("originator") \
                or not h.get("session_id"):
            return 400, _detail("Missing required Codex headers.")
        b = rec.body
        if not isinstance(b, dict):
            return 400, _detail("Invalid JSON body.")
        if b.get("stream") is not True:
            return 400, _detail("Stream must be set to true")
        if b.get("store") is not False:
            return 400, _detail("Store must be set to false")
        if not b.get("instructions"):
            return 400, _detail("Instructions are required")
        for key in ("max_output_tokens", "temperature", "top_p", "metadata"):
            if key in b:
                return 400, _detail(f"Unsupported parameter: {key}")
        inp = b.get("input")
        for i, item in enumerate(inp if isinstance(inp, list) else ()):
            # status is output-only (seed 002, tkach's Codex provider): the backend
            # rejects an input item that carries it
            if isinstance(item, dict) and "status" in item:
                return 400, _detail(f"Unknown parameter: 'input[{i}].status'.")
        if b.get("model") not in CODEX_MODELS:
            return 400, _detail(f"The '{b.get('model')}' model is not supported when using "
                                "Codex with a ChatGPT account.")
        return None

    def _scenario_error(self, rec: Recorded) -> tuple[int, dict[str, Any]] | None:
        return {
            "usage_limit": (429, {"error": {
                "type": "usage_limit_reached", "message": "The usage limit has been reached",
                "plan_type": "plus", "resets_in_seconds": USAGE_RESET_SECONDS}}),
            "error400": (400, {"error": {
                "message": "Your input exceeds the context window of this model. Please "
                "adjust your input and try again.", "type": "invalid_request_error",
                "param": "input", "code": "context_length_exceeded"}}),
            "error403": (403, _detail("You do not have access to Codex on this plan.")),
            "error404": (404, _detail("Not Found")),
            "error500": (500, _detail("Internal Server Error")),
            "overloaded": (503, _detail("Our servers are currently overloaded. Please try "
                                        "again later.")),
        }.get(rec.scenario)

    async def _codex(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request, "responses")
        bad = self._check(rec)
        if bad is not None:
            return self._json(rec, bad[1], bad[0])
        try:
            _validate_responses(rec.body)
        except _Reject as e:
            return self._json(rec, _detail(e.message), 400)
        scen = rec.scenario
        if scen == "error429":
            return self._json(rec, _detail("Rate limit reached. Please try again later."), 429,
                              {"retry-after": RETRY_AFTER})
        if scen == "error413":
            return self._json(rec, _detail("Request body too large"), 413)
        failed = self._scenario_error(rec)
        if failed is not None:
            return self._json(rec, failed[1], failed[0])
        body: dict[str, Any] = rec.body
        if scen in ("tools", "custom") and _has_tool_results("responses", body):
            scen = "followup"
        frames = self._resp_frames(body, "text" if scen == "done" else scen)
        return await self._sse(request, rec, self._codex_end(frames) if scen == "done"
                               else frames)

    @staticmethod
    async def _codex_end(frames: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The stream as the backend sometimes ends it: ``response.done``."""
        async for f in frames:
            if f.startswith(b"event: response.completed\n"):
                f = f.replace(b"response.completed", b"response.done", 2)
            yield f

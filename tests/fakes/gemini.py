"""A fake Gemini API + Vertex AI upstream (and a Google OAuth2 token endpoint), built on
``FakeUpstream`` (same thread/loop plumbing, request recording, scenario convention and
fixture content), speaking ``generateContent`` byte for byte as
docs/protocols/providers.md describes it:

* ``POST /{v1beta,v1}/models/{model}:generateContent`` / ``:streamGenerateContent?alt=sse``
  / ``:countTokens`` — Gemini API, ``x-goog-api-key`` header;
* ``POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:…`` — Vertex AI,
  ``Authorization: Bearer`` with a token this fake issued and that has not expired or
  been revoked (``/v1/publishers/google/models/…``: express mode, API key);
* ``POST /token`` — the OAuth2 JWT-bearer grant google-auth uses for a service account:
  the RS256 assertion is verified against the registered public key, its claims checked
  (issuer, audience, scope, lifetime), and a token living ``token_ttl`` seconds issued.

Streams are ``data: {…}`` frames separated by CRLF, no ``event:`` lines, no ``[DONE]``;
each chunk carries only new parts, the last one the ``finishReason`` and the usage.
Every answer is a hand-written fixture. Like the real services the fake refuses unknown
request fields, empty text parts, a ``functionResponse`` turn whose count differs from the
calls it answers, and (as Gemini 3 does) function-calling history whose first call of a
model turn carries no ``thoughtSignature``.

Scenarios (``scenario:<name>`` in the last user text, default ``text``):
``text``, ``tools`` (PREAMBLE + two calls without ids, the first signed; after the
results: FOLLOWUP), ``tools_ids`` (the same with Gemini-minted call ids), ``thinking``
(thought parts when ``includeThoughts``, then THINK_ANSWER; signature on the last part),
``image`` (describes every ``inlineData`` / ``fileData`` it got), ``truncated``
(``MAX_TOKENS``), ``blocked`` (``promptFeedback.blockReason``), ``safety`` (candidate
stopped by ``SAFETY``), ``error400`` (context too long), ``error403``, ``error404``,
``error413`` (an HTML page from the front end), ``error429`` (``RESOURCE_EXHAUSTED`` with
``RetryInfo`` 37s), ``error500``, ``error503``, ``cut`` (connection dropped mid-body),
``malformed`` (a chunk / body that is not JSON), ``midstream_error`` (text, then an
``error`` object in the stream).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.upstream import (
    CUT,
    FOLLOWUP_CHUNKS,
    IMAGE_PNG,
    PREAMBLE,
    TEXT_CHUNKS,
    THINK_ANSWER_CHUNKS,
    THINKING_CHUNKS,
    TRUNCATED_CHUNKS,
    FakeUpstream,
    Recorded,
    image_answer,
    image_note,
)

GEMINI_KEY = "AIzaSyFake-gemini-upstream-key_0123456789"
VERTEX_PROJECT = "proj-fake-123"
VERTEX_LOCATION = "us-central1"
SA_EMAIL = "dragoman-test@proj-fake-123.iam.gserviceaccount.com"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
#: the audience Google requires of a service-account assertion (whatever URL it is posted to)
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"

#: thoughtSignature the fake mints ('+', '/' and '=' must survive every hop)
GEMINI_SIGNATURE = "CiQBVKhc7Fake+Gemini/Thought_Signature0123456789abcdefABCDEF=="
THINK_SIGNATURE = "CmwBVKhc7Fake+Answer/Signature9876543210zyxwvu=="
SKIP_SIGNATURE = "skip_thought_signature_validator"
#: ids Gemini mints itself in the ``tools_ids`` scenario
GEMINI_CALL_IDS = ("fc-7k2weather", "fc-9q4time")
COUNT_TOKENS = 5151
PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
RETRY_DELAY = "37s"
USAGE = {"promptTokenCount": 11, "candidatesTokenCount": 7, "totalTokenCount": 18,
         "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 11}]}
#: tools: 80 prompt tokens of which 64 cached; 25 visible + 6 thought output tokens
TOOLS_USAGE = {"promptTokenCount": 80, "cachedContentTokenCount": 64,
               "candidatesTokenCount": 25, "thoughtsTokenCount": 6, "totalTokenCount": 111}
THINK_USAGE = {"promptTokenCount": 9, "candidatesTokenCount": 4, "thoughtsTokenCount": 40,
               "totalTokenCount": 53}

_GENERATE_FIELDS = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig",
                    "safetySettings", "cachedContent", "labels"}
_GENCONFIG_FIELDS = {"maxOutputTokens", "temperature", "topP", "topK", "stopSequences",
                     "candidateCount", "seed", "responseMimeType", "responseJsonSchema",
                     "responseSchema", "thinkingConfig", "presencePenalty", "frequencyPenalty",
                     "responseModalities"}
_PART_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse",
              "executableCode", "codeExecutionResult")


def _g(obj: Any) -> str:
    # Google's JSON has spaces after separators.
    return json.dumps(obj, ensure_ascii=False)


def sse_chunk(obj: Any) -> bytes:
    return f"data: {_g(obj)}\r\n\r\n".encode()


def _b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class _Bad(Exception):
    def __init__(self, message: str, status: int = 400, gstatus: str = "INVALID_ARGUMENT",
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.gstatus, self.details = message, status, gstatus, details


def google_error(status: int, gstatus: str, message: str,
                 details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": status, "message": message, "status": gstatus}
    if details is not None:
        err["details"] = details
    return {"error": err}


# --- reading what a client sent -----------------------------------------------------------


def user_texts(body: Any) -> list[str]:
    out: list[str] = []
    for c in body.get("contents") or [] if isinstance(body, dict) else []:
        if isinstance(c, dict) and c.get("role") == "user":
            out.append("".join(p.get("text", "") for p in c.get("parts") or []
                               if isinstance(p, dict)))
    return out


def scenario_of(body: Any) -> str:
    for text in reversed(user_texts(body)):
        m = re.search(r"scenario:([a-z0-9_]+)", text)
        if m:
            return m.group(1)
    return "text"


def has_function_responses(body: dict[str, Any]) -> bool:
    return any("functionResponse" in p for c in body.get("contents") or []
               for p in c.get("parts") or [])


def image_notes(body: dict[str, Any]) -> list[str]:
    notes: list[str] = []
    for c in body.get("contents") or []:
        for p in c.get("parts") or []:
            if "inlineData" in p:
                notes.append(image_note(data=base64.b64decode(p["inlineData"]["data"])))
            elif "fileData" in p:
                notes.append(image_note(url=p["fileData"]["fileUri"]))
    return notes


def validate(body: Any) -> None:
    """The structural rules the real API enforces with a 400."""
    if not isinstance(body, dict):
        raise _Bad("Invalid JSON payload received.")
    for k in body:
        if k not in _GENERATE_FIELDS:
            raise _Bad(f'Invalid JSON payload received. Unknown name "{k}": Cannot find field.')
    gen = body.get("generationConfig") or {}
    for k in gen:
        if k not in _GENCONFIG_FIELDS:
            raise _Bad(f'Invalid JSON payload received. Unknown name "{k}" at '
                       f"'generation_config': Cannot find field.")
    si = body.get("systemInstruction")
    if si is not None and not all("text" in p for p in si.get("parts") or [None]):
        raise _Bad("system_instruction must contain text parts only")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise _Bad("* GenerateContentRequest.contents: contents is not specified")
    prev_calls = 0
    for i, c in enumerate(contents):
        role = c.get("role")
        if role not in ("user", "model"):
            raise _Bad(f"Please use a valid role: user, model. (contents[{i}])")
        parts = c.get("parts")
        if not isinstance(parts, list) or not parts:
            raise _Bad(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must "
                       "not be empty.")
        for j, p in enumerate(parts):
            data = [k for k in _PART_DATA if k in p]
            if len(data) != 1:
                raise _Bad(f"* GenerateContentRequest.contents[{i}].parts[{j}].data: "
                           "required oneof field 'data' must have one initialized field")
            if "text" in p and p["text"] == "" and "thoughtSignature" not in p:
                raise _Bad("Unable to submit request because it has an empty text parameter. "
                           "Add a value to the parameter and try again.")
            fr = p.get("functionResponse")
            if fr is not None and (not fr.get("name") or not isinstance(fr.get("response"),
                                                                         dict)):
                raise _Bad(f"* GenerateContentRequest.contents[{i}].parts[{j}]."
                           "function_response.name: Name cannot be empty.")
        n_resp = sum("functionResponse" in p for p in parts)
        if role == "user" and (n_resp or prev_calls) and n_resp != prev_calls:
            raise _Bad("Please ensure that the number of function response parts is equal to "
                       "the number of function call parts of the function call turn.")
        calls = [p for p in parts if "functionCall" in p]
        if calls and "thoughtSignature" not in calls[0]:
            raise _Bad("Function call is missing a thought_signature in functionCall parts. "
                       "This is required for tools to work correctly, and missing "
                       "thought_signature may lead to degraded model performance. Additional "
                       f"data, function call `default_api:{calls[0]['functionCall']['name']}` "
                       f", position {i + 1}. Please refer to "
                       "https://ai.google.dev/gemini-api/docs/thought-signatures for more "
                       "details.")
        prev_calls = len(calls) if role == "model" else 0


# --- the server ---------------------------------------------------------------------------------


class FakeGemini(FakeUpstream):
    """See the module docstring."""

    def __init__(self, *, gemini_key: str = GEMINI_KEY) -> None:
        super().__init__()
        self.gemini_key = gemini_key
        self.public_keys: dict[str, rsa.RSAPublicKey] = {}
        """Service-account email → the public key its assertions must verify with."""
        self.token_ttl = 3600
        self.token_delay = 0.0
        """Seconds the token endpoint takes to answer (to see a refresh not block)."""
        self.tokens: dict[str, float] = {}
        """Issued access token → when it expires (``time.time()``)."""
        self.token_requests: list[dict[str, Any]] = []
        """The verified claims of every assertion the token endpoint accepted."""
        self._token_lock = threading.Lock()
        self._responses = 0

    # --- what tests set and read ----------------------------------------------------------

    def register_service_account(self, email: str, key: rsa.RSAPrivateKey) -> None:
        self.public_keys[email] = key.public_key()

    def revoke_tokens(self) -> None:
        with self._token_lock:
            self.tokens.clear()

    def gemini_requests(self, marker: str = "") -> list[Recorded]:
        return [r for r in self.find(marker) if r.api in ("gemini", "vertex")]

    # --- routes ------------------------------------------------------------------------------

    def vendor_routes(self, app: web.Application) -> None:
        for version in ("v1beta", "v1"):
            app.router.add_post(f"/{version}/models/{{action}}", self._gemini)
        app.router.add_post("/{version}/projects/{project}/locations/{location}/publishers/"
                            "google/models/{action}", self._vertex)
        app.router.add_post("/{version}/publishers/google/models/{action}", self._vertex_express)
        app.router.add_post("/token", self._token)
        app.router.add_get("/images/red.png", self._image)
        app.router.add_get("/docs/note.pdf", self._pdf)

    async def _image(self, request: web.Request) -> web.StreamResponse:
        """An image on a web server, for the URL-image path (fetched by dragoman)."""
        rec = await self._record(request, "image")
        return self._done(rec, web.Response(body=IMAGE_PNG, content_type="image/png"))

    async def _pdf(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request, "document")
        return self._done(rec, web.Response(body=PDF_BYTES, content_type="application/pdf"))

    # --- OAuth2 token endpoint ---------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request, "oauth")
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        form = {k: v[0] for k, v in parse_qs(rec.raw.decode()).items()}

        def refuse(error: str, description: str) -> web.Response:
            return self._json(rec, {"error": error, "error_description": description}, 400)

        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return refuse("unsupported_grant_type", "Invalid grant_type.")
        parts = form.get("assertion", "").split(".")
        if len(parts) != 3:
            return refuse("invalid_grant", "Invalid JWT: Token must be a short-lived token "
                          "and in a reasonable timeframe.")
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except ValueError:
            return refuse("invalid_grant", "Invalid JWT.")
        key = self.public_keys.get(claims.get("iss", ""))
        if header.get("alg") != "RS256" or key is None:
            return refuse("invalid_grant", "Invalid grant: account not found")
        try:
            key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(),
                       hashes.SHA256())
        except InvalidSignature:
            return refuse("invalid_grant", "Invalid JWT Signature.")
        now = time.time()
        if claims.get("aud") != GOOGLE_TOKEN_AUDIENCE or \
                CLOUD_PLATFORM not in str(claims.get("scope", "")).split() or \
                not (claims.get("iat", 0) - 300 <= now <= claims.get("exp", 0) + 300) or \
                claims["exp"] - claims["iat"] > 3600:
            return refuse("invalid_grant", "Invalid JWT: Token must be a short-lived token "
                          "(60 minutes) and in a reasonable timeframe.")
        with self._token_lock:
            token = f"ya29.fake-{len(self.token_requests) + 1}-{int(now * 1000) % 100000}"
            self.tokens[token] = now + self.token_ttl
            self.token_requests.append(claims)
        return self._json(rec, {"access_token": token, "expires_in": self.token_ttl,
                                "token_type": "Bearer"})

    # --- Gemini API / Vertex entry points -------------------------------------------------------

    async def _gemini(self, request: web.Request) -> web.StreamResponse:
        rec = await self._generate_record(request, "gemini")
        key = rec.headers.get("x-goog-api-key")
        if "key" in request.query:
            raise AssertionError("the API key must never travel in the URL")
        if key is None:
            return self._google_error(rec, 403, "PERMISSION_DENIED",
                                      "Method doesn't allow unregistered callers (callers "
                                      "without established identity). Please use API Key or "
                                      "other form of API consumer identity to call this API.")
        if key != self.gemini_key:
            return self._google_error(rec, 400, "INVALID_ARGUMENT",
                                      "API key not valid. Please pass a valid API key.", [
                                          {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                           "reason": "API_KEY_INVALID",
                                           "domain": "googleapis.com",
                                           "metadata": {"service":
                                                        "generativelanguage.googleapis.com"}}])
        return await self._generate(request, rec)

    async def _vertex(self, request: web.Request) -> web.StreamResponse:
        rec = await self._generate_record(request, "vertex")
        auth = rec.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        with self._token_lock:
            expires = self.tokens.get(token) if auth.startswith("Bearer ") else None
        if expires is None or expires <= time.time():
            return self._google_error(rec, 401, "UNAUTHENTICATED",
                                      "Request had invalid authentication credentials. Expected "
                                      "OAuth 2 access token, login cookie or other valid "
                                      "authentication credential. See https://developers."
                                      "google.com/identity/sign-in/web/devconsole-project.", [
                                          {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                           "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                                           "domain": "googleapis.com"}])
        mi = request.match_info
        if mi["project"] != VERTEX_PROJECT or mi["version"] not in ("v1", "v1beta1"):
            return self._google_error(rec, 403, "PERMISSION_DENIED",
                                      f"Permission 'aiplatform.endpoints.predict' denied on "
                                      f"resource '//aiplatform.googleapis.com/projects/"
                                      f"{mi['project']}/locations/{mi['location']}' (or it may "
                                      "not exist).")
        return await self._generate(request, rec)

    async def _vertex_express(self, request: web.Request) -> web.StreamResponse:
        rec = await self._generate_record(request, "vertex")
        if rec.headers.get("x-goog-api-key") != self.gemini_key:
            return self._google_error(rec, 401, "UNAUTHENTICATED",
                                      "API keys are not supported by this API. Expected OAuth2 "
                                      "access token or other authentication credentials that "
                                      "assert a principal.")
        return await self._generate(request, rec)

    async def _generate_record(self, request: web.Request, api: str) -> Recorded:
        rec = await self._record(request, api)
        rec.scenario = scenario_of(rec.body)
        rec.stream = request.match_info["action"].endswith(":streamGenerateContent")
        return rec

    def _google_error(self, rec: Recorded, status: int, gstatus: str, message: str,
                      details: list[dict[str, Any]] | None = None) -> web.Response:
        return self._json(rec, google_error(status, gstatus, message, details), status)

    # --- generateContent --------------------------------------------------------------------

    async def _generate(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        model, _, verb = request.match_info["action"].partition(":")
        if verb == "countTokens":
            body = rec.body if isinstance(rec.body, dict) else {}
            inner = body.get("generateContentRequest", body) if rec.api == "gemini" else body
            try:
                validate({k: v for k, v in inner.items() if k != "model"})
            except _Bad as e:
                return self._google_error(rec, e.status, e.gstatus, e.message)
            return self._json(rec, {"totalTokens": COUNT_TOKENS})
        if verb not in ("generateContent", "streamGenerateContent"):
            return self._google_error(rec, 404, "NOT_FOUND", f"Method not found: {verb}.")
        if rec.stream and request.query.get("alt") != "sse":
            return self._google_error(rec, 400, "INVALID_ARGUMENT",
                                      "this fake only streams with alt=sse")
        failed = self._http_failure(rec, model)
        if failed is not None:
            return failed
        try:
            validate(rec.body)
        except _Bad as e:
            return self._google_error(rec, e.status, e.gstatus, e.message, e.details)
        body: dict[str, Any] = rec.body
        scen = rec.scenario
        if scen in ("tools", "tools_ids") and has_function_responses(body):
            scen = "followup"
        with self._lock:
            self._responses += 1
            rid = f"fakeResp{self._responses:04d}-{rec.api}"
        chunks = self._chunks(body, scen, model)
        if scen == "malformed" and not rec.stream:
            return await self._broken_json(request, rec, b'{"candidates": [{"content": {')
        if scen == "cut" and not rec.stream:
            return await self._broken_json(request, rec,
                                           b'{\n  "candidates": [\n    {\n      "content": {')
        for c in chunks:
            if isinstance(c, dict) and "error" not in c:
                c["modelVersion"] = model
                c["responseId"] = rid
        if not rec.stream:
            return self._json_google(rec, self._whole(chunks))
        return await self._sse(request, rec, self._frames(chunks))

    def _json_google(self, rec: Recorded, payload: Any) -> web.Response:
        resp = web.Response(status=200, text=json.dumps(payload, indent=2),
                            content_type="application/json")
        return self._done(rec, resp)  # type: ignore[return-value]

    @staticmethod
    def _frames(chunks: list[Any]) -> Iterator[bytes]:
        for c in chunks:
            if c is CUT:
                yield CUT
            elif isinstance(c, bytes):
                yield c
            else:
                yield sse_chunk(c)

    @staticmethod
    def _whole(chunks: list[Any]) -> dict[str, Any]:
        """The non-stream answer: the stream's chunks merged (parts concatenated, adjacent
        text of one kind joined, last finishReason and usage)."""
        parts: list[dict[str, Any]] = []
        out: dict[str, Any] = {}
        cand: dict[str, Any] = {}
        for c in chunks:
            if not isinstance(c, dict):
                continue
            for k in ("usageMetadata", "modelVersion", "responseId", "promptFeedback"):
                if k in c:
                    out[k] = c[k]
            for cd in c.get("candidates") or []:
                for p in (cd.get("content") or {}).get("parts") or []:
                    last = parts[-1] if parts else None
                    if last is not None and "text" in p and "text" in last and \
                            bool(p.get("thought")) == bool(last.get("thought")) and \
                            "thoughtSignature" not in last:
                        last["text"] += p["text"]
                        if "thoughtSignature" in p:
                            last["thoughtSignature"] = p["thoughtSignature"]
                    else:
                        parts.append(dict(p))
                for k in ("finishReason", "safetyRatings", "index"):
                    if k in cd:
                        cand[k] = cd[k]
        if cand or parts:
            cand["content"] = {"parts": parts, "role": "model"}
            out["candidates"] = [cand]
        return out

    # --- failures decided before looking at the request -------------------------------------

    def _http_failure(self, rec: Recorded, model: str) -> web.StreamResponse | None:
        s = rec.scenario
        if s == "error400":
            return self._google_error(rec, 400, "INVALID_ARGUMENT",
                                      "The input token count (1234567) exceeds the maximum "
                                      "number of tokens allowed (1048576).")
        if s == "error403":
            return self._google_error(rec, 403, "PERMISSION_DENIED",
                                      "Generative Language API has not been used in project "
                                      "123 before or it is disabled.", [
                                          {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                           "reason": "SERVICE_DISABLED",
                                           "domain": "googleapis.com"}])
        if s == "error404":
            return self._google_error(rec, 404, "NOT_FOUND",
                                      f"models/{model} is not found for API version v1beta, or "
                                      "is not supported for generateContent. Call ListModels "
                                      "to see the list of available models and their "
                                      "supported methods.")
        if s == "error413":
            resp = web.Response(status=413, content_type="text/html", text=(
                "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 413 "
                "(Request Entity Too Large)!!1</title>\n  <p><b>413.</b> <ins>That\u2019s an "
                "error.</ins>\n  <p>Your client issued a request that was too large.\n  "
                "<ins>That\u2019s all we know.</ins>\n"))
            return self._done(rec, resp)
        if s == "error429":
            return self._google_error(rec, 429, "RESOURCE_EXHAUSTED",
                                      "You exceeded your current quota, please check your plan "
                                      "and billing details.", [
                                          {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                                           "violations": [{"quotaMetric": "generativelanguage."
                                                           "googleapis.com/generate_content_"
                                                           "free_tier_requests",
                                                           "quotaId": "GenerateRequestsPerMinute"
                                                           "PerProjectPerModel-FreeTier"}]},
                                          {"@type": "type.googleapis.com/google.rpc.Help",
                                           "links": [{"description": "Learn more",
                                                      "url": "https://ai.google.dev/gemini-api/"
                                                             "docs/rate-limits"}]},
                                          {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                           "retryDelay": RETRY_DELAY}])
        if s == "error500":
            return self._google_error(rec, 500, "INTERNAL",
                                      "An internal error has occurred. Please retry or report "
                                      "in https://developers.generativeai.google/guide/"
                                      "troubleshooting")
        if s == "error503":
            return self._google_error(rec, 503, "UNAVAILABLE",
                                      "The model is overloaded. Please try again later.")
        return None

    # --- answers -----------------------------------------------------------------------------

    @staticmethod
    def _cand(parts: list[dict[str, Any]], finish: str | None = None) -> dict[str, Any]:
        cd: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish is not None:
            cd["finishReason"] = finish
        return {"candidates": [cd]}

    def _text_chunks(self, pieces: tuple[str, ...], usage: dict[str, Any],
                     finish: str = "STOP") -> list[Any]:
        out: list[Any] = [self._cand([{"text": t}]) for t in pieces]
        out[-1]["candidates"][0]["finishReason"] = finish
        for c in out:
            c["usageMetadata"] = {"promptTokenCount": usage["promptTokenCount"],
                                  "totalTokenCount": usage["promptTokenCount"]}
        out[-1]["usageMetadata"] = usage
        return out

    def _chunks(self, body: dict[str, Any], scen: str, model: str) -> list[Any]:
        thoughts = bool(((body.get("generationConfig") or {}).get("thinkingConfig") or {})
                        .get("includeThoughts"))
        if scen in ("tools", "tools_ids"):
            ids = scen == "tools_ids"
            weather: dict[str, Any] = {"name": "get_weather", "args": {"city": "Paris"}}
            clock: dict[str, Any] = {"name": "get_time", "args": {}}
            if ids:
                weather["id"], clock["id"] = GEMINI_CALL_IDS
            return [
                self._cand([{"text": PREAMBLE}]) | {"usageMetadata": {"promptTokenCount": 80,
                                                                       "totalTokenCount": 80}},
                # calls arrive whole; only the first of parallel calls is signed
                self._cand([{"functionCall": weather, "thoughtSignature": GEMINI_SIGNATURE},
                            {"functionCall": clock}], "STOP")
                | {"usageMetadata": TOOLS_USAGE},
            ]
        if scen == "followup":
            return self._text_chunks(FOLLOWUP_CHUNKS, {"promptTokenCount": 120,
                                                       "candidatesTokenCount": 14,
                                                       "totalTokenCount": 134})
        if scen == "thinking":
            out: list[Any] = []
            if thoughts:
                out += [self._cand([{"text": t, "thought": True}]) for t in THINKING_CHUNKS]
            out += [self._cand([{"text": t}]) for t in THINK_ANSWER_CHUNKS]
            # the signature comes last, on an empty text part, with the finish reason
            out.append(self._cand([{"text": "", "thoughtSignature": THINK_SIGNATURE}], "STOP")
                       | {"usageMetadata": THINK_USAGE})
            return out
        if scen == "image":
            return self._text_chunks((image_answer(image_notes(body)),), USAGE)
        if scen == "truncated":
            return self._text_chunks(TRUNCATED_CHUNKS, USAGE, "MAX_TOKENS")
        if scen == "blocked":
            return [{"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]},
                "usageMetadata": {"promptTokenCount": 11, "totalTokenCount": 11}}]
        if scen == "safety":
            return [self._cand([{"text": "I can"}]),
                    {"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": [
                        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH",
                         "blocked": True}]}], "usageMetadata": USAGE}]
        if scen == "cut":
            return [*(self._cand([{"text": t}]) for t in TEXT_CHUNKS[:2]), CUT]
        if scen == "malformed":
            return [self._cand([{"text": TEXT_CHUNKS[0]}]),
                    b'data: {"candidates": [{"content": {"parts": [{"text": \r\n\r\n']
        if scen == "midstream_error":
            return [self._cand([{"text": "Partial answer"}]),
                    google_error(503, "UNAVAILABLE", "The model is overloaded. Please try "
                                 "again later.")]
        return self._text_chunks(TEXT_CHUNKS, USAGE)

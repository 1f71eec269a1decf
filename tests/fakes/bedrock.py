"""A fake AWS Bedrock runtime that speaks Converse and ConverseStream byte for byte.

``FakeBedrock`` is the ``FakeUpstream`` server (same lifecycle, request recording and
``scenario:<name>`` convention, same fixture content) with the Bedrock routes:

* ``POST /model/{modelId}/converse``         JSON answer
* ``POST /model/{modelId}/converse-stream``  ``application/vnd.amazon.eventstream``
* ``GET /images/red.png``                    the shared 1x1 PNG (for image-URL tests)

Every answer is HAND-WRITTEN from docs/protocols/providers.md: the event-stream
frames are built here from the spec (``es_frame``), independent of dragoman's decoder,
and written in slices that do not line up with frame boundaries.

Authentication is checked like the real service: either ``Authorization: Bearer
<BEDROCK_API_KEY>`` or a SigV4 signature, which is VERIFIED — recomputed twice from the
known test credentials, once by following the spec step by step (hashlib/hmac) and once
with botocore's ``SigV4Auth`` over the request exactly as received (raw path, signed
headers, body); both must equal the signature sent. A temporary credential must come with
its session token; a request dated more than 5 minutes away is refused.

The request body is validated the way Converse does (400 ``ValidationException``):
known top-level keys only (no ``model``/``stream``), roles alternating and starting with
``user``, one key per content block, no blank text, ``toolConfig`` present whenever the
history holds ``toolUse``/``toolResult``, every ``toolResult`` answering a ``toolUse`` of
the previous turn, images with a valid format and base64 bytes, reasoning with its
signature, a thinking budget in [1024, maxTokens).

Scenarios (besides the shared ``text``, ``tools``, ``thinking``, ``truncated``, ``image``):
``error400`` (ValidationException, input too long), ``error403`` (AccessDeniedException),
``error404`` (ResourceNotFoundException), ``error408`` (ModelTimeoutException),
``error413`` (an HTML 413 from the front end, no error type), ``error424``
(ModelErrorException), ``error429`` (ThrottlingException, no retry-after — Bedrock sends
none), ``error500`` (InternalServerException), ``error503``/``overloaded``
(ServiceUnavailableException); stream-only: ``midstream_error`` (text, then a
``modelStreamErrorException`` exception frame), ``stream_throttled`` (a
``throttlingException`` frame), ``throttled_start`` (``messageStart`` then a
``throttlingException``, before any content), ``cut`` (text, then half a frame and the connection
drops), ``malformed`` (text, then a frame whose message CRC is wrong), ``badprelude``
(text, then a frame whose prelude CRC is wrong). Non-stream ``cut``/``malformed``: half a
JSON body / a body that is not JSON.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import re
import struct
import zlib
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fakes.upstream import (
    CUT,
    FOLLOWUP_CHUNKS,
    IMAGE_PNG,
    PARTIAL,
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

REGION = "eu-west-3"
AWS_KEY_ID = "AKIAFAKEBEDROCK7EXMP"
AWS_SECRET = "fake/BedrockSecret+Key/0123456789abcdefghij"
TEMP_KEY_ID = "ASIAFAKETEMPORARY001"
TEMP_SECRET = "fake/TemporarySecret+Key/9876543210zyxwvu"
TEMP_TOKEN = "IQoJb3JpZ2luX2VjEFAKE//session+token/with=padding=="
BEDROCK_API_KEY = "ABSKQmVkcm9ja0FQSUtleS1mYWtl0123456789+/=="

#: key id → (secret, session token or None)
CREDENTIALS = {AWS_KEY_ID: (AWS_SECRET, None), TEMP_KEY_ID: (TEMP_SECRET, TEMP_TOKEN)}

BEDROCK_TOOL_IDS = ("tooluse_Wx7pQ1aBcDeF", "tooluse_Tm3kZ2gHiJkL")
BEDROCK_SIGNATURE = "ErcBCkgIBhABGAIiQFake+Bedrock/Reasoning0123456789abcdefSignature=="

#: Converse usage per scenario: ``inputTokens`` excludes the cache reads and writes
TEXT_USAGE = {"inputTokens": 21, "outputTokens": 9, "totalTokens": 135,
              "cacheReadInputTokens": 100, "cacheWriteInputTokens": 5}
TOOLS_USAGE = {"inputTokens": 82, "outputTokens": 31, "totalTokens": 113}
THINK_USAGE = {"inputTokens": 30, "outputTokens": 60, "totalTokens": 90}

_PATH = re.compile(r"^/model/([^/]+)/(converse|converse-stream)$")
_TOP_LEVEL = frozenset({"messages", "system", "inferenceConfig", "toolConfig",
                        "guardrailConfig", "additionalModelRequestFields",
                        "additionalModelResponseFieldPaths", "promptVariables",
                        "requestMetadata", "performanceConfig"})
_BLOCK_KEYS = frozenset({"text", "image", "document", "video", "toolUse", "toolResult",
                         "guardContent", "cachePoint", "reasoningContent", "citationsContent"})
_SCENARIO = re.compile(r"scenario:([a-z0-9_]+)")


# --- the AWS event stream, built from the spec --------------------------------------------


def es_header(name: str, value: str | bytes | bool | int, htype: int | None = None) -> bytes:
    """One header: name_len u8 · name · type u8 · value (string by default)."""
    n = name.encode()
    out = struct.pack(">B", len(n)) + n
    if htype is None:
        htype = 7 if isinstance(value, str) else 6 if isinstance(value, bytes) else 4
    out += struct.pack(">B", htype)
    if htype in (0, 1):
        return out
    if htype == 2:
        return out + struct.pack(">b", value)
    if htype == 3:
        return out + struct.pack(">h", value)
    if htype == 4:
        return out + struct.pack(">i", value)
    if htype in (5, 8):
        return out + struct.pack(">q", value)
    if htype == 9:
        assert isinstance(value, bytes) and len(value) == 16
        return out + value
    raw = value.encode() if isinstance(value, str) else value
    assert isinstance(raw, bytes)
    return out + struct.pack(">H", len(raw)) + raw


def es_frame(headers: bytes, payload: bytes, *, bad_prelude_crc: bool = False,
             bad_message_crc: bool = False) -> bytes:
    """| total u32 | headers_len u32 | crc32(first 8) | headers | payload | crc32(all before) |"""
    total = 12 + len(headers) + len(payload) + 4
    head = struct.pack(">II", total, len(headers))
    pcrc = zlib.crc32(head) ^ (0xFF if bad_prelude_crc else 0)
    body = head + struct.pack(">I", pcrc) + headers + payload
    mcrc = zlib.crc32(body) ^ (0xFF00 if bad_message_crc else 0)
    return body + struct.pack(">I", mcrc)


def _j(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def event(event_type: str, obj: dict[str, Any], **bad: bool) -> bytes:
    # Real ConverseStream events carry a random "p" padding key: parsers must ignore it.
    payload = _j({**obj, "p": "abcdefghij"[: 1 + len(event_type) % 9]})
    headers = (es_header(":event-type", event_type)
               + es_header(":content-type", "application/json")
               + es_header(":message-type", "event"))
    return es_frame(headers, payload, **bad)


def exception(exception_type: str, message: str) -> bytes:
    headers = (es_header(":exception-type", exception_type)
               + es_header(":content-type", "application/json")
               + es_header(":message-type", "exception"))
    return es_frame(headers, _j({"message": message}))


def slices(frames: Iterable[bytes], size: int = 37) -> list[bytes]:
    """The frames joined and cut every ``size`` bytes: TCP reads never line up with frames."""
    blob = b"".join(frames)
    return [blob[i:i + size] for i in range(0, len(blob), size)]


# --- SigV4, verified two ways ---------------------------------------------------------------

_AUTH = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
                   r"\s*SignedHeaders=([a-z0-9;\-]+),\s*Signature=([0-9a-f]{64})$")


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4_per_spec(method: str, raw_path: str, headers: dict[str, str], signed: list[str],
                   body: bytes, secret: str, amz_date: str, region: str,
                   service: str = "bedrock") -> str:
    """The signature, following providers.md step by step (no botocore)."""
    canonical_headers = "".join(f"{h}:{' '.join(headers[h].strip().split())}\n"
                                for h in signed)
    canonical = "\n".join([method, quote(raw_path, safe="/~"), "", canonical_headers,
                           ";".join(signed), hashlib.sha256(body).hexdigest()])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(("AWS4" + secret).encode(), amz_date[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def sigv4_by_botocore(method: str, url: str, headers: dict[str, str], signed: list[str],
                      body: bytes, key_id: str, secret: str, token: str | None,
                      amz_date: str, region: str) -> str:
    """The signature botocore computes for the request as received."""
    req = AWSRequest(method=method, url=url, data=body,
                     headers={h: headers[h] for h in signed})
    req.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(key_id, secret, token), "bedrock", region)
    canonical = signer.canonical_request(req)
    return str(signer.signature(signer.string_to_sign(req, canonical), req))


class _Reject(Exception):
    def __init__(self, status: int, etype: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.etype, self.message = status, etype, message


def check_sigv4(request: web.Request, raw: bytes, headers: dict[str, str]) -> None:
    auth = headers.get("authorization", "")
    if auth.startswith("Bearer "):
        if auth[7:] != BEDROCK_API_KEY:
            raise _Reject(403, "AccessDeniedException", "Invalid API Key format: Must start "
                          "with pre-defined prefix")
        return
    m = _AUTH.match(auth)
    if m is None:
        raise _Reject(403, "MissingAuthenticationTokenException",
                      "Missing Authentication Token")
    key_id, date, region, service, signed_s, signature = m.groups()
    if key_id not in CREDENTIALS:
        raise _Reject(403, "UnrecognizedClientException",
                      "The security token included in the request is invalid.")
    secret, token = CREDENTIALS[key_id]
    signed = signed_s.split(";")
    if signed != sorted(signed) or not {"host", "x-amz-date", "content-type"} <= set(signed):
        raise _Reject(403, "IncompleteSignatureException",
                      "host, x-amz-date and content-type must be signed, sorted")
    if any(h not in headers for h in signed):
        raise _Reject(403, "IncompleteSignatureException", "a signed header is missing")
    if token is not None and (headers.get("x-amz-security-token") != token
                              or "x-amz-security-token" not in signed):
        raise _Reject(403, "UnrecognizedClientException",
                      "The security token included in the request is invalid.")
    amz_date = headers.get("x-amz-date", "")
    try:
        when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise _Reject(403, "IncompleteSignatureException", "bad x-amz-date") from None
    if abs((dt.datetime.now(dt.UTC) - when).total_seconds()) > 300 or date != amz_date[:8]:
        raise _Reject(403, "InvalidSignatureException", "Signature expired: the request is "
                      "dated more than 5 minutes away from the server time.")
    if region != REGION or service != "bedrock":
        raise _Reject(403, "InvalidSignatureException",
                      f"Credential should be scoped to a valid region ('{REGION}') and "
                      "service ('bedrock').")
    raw_path = request.raw_path
    spec = sigv4_per_spec(request.method, raw_path, headers, signed, raw, secret, amz_date,
                          region)
    boto = sigv4_by_botocore(request.method, f"http://{headers['host']}{raw_path}", headers,
                             signed, raw, key_id, secret, token, amz_date, region)
    if not (hmac.compare_digest(spec, signature) and hmac.compare_digest(boto, signature)):
        raise _Reject(403, "InvalidSignatureException",
                      "The request signature we calculated does not match the signature you "
                      "provided. Check your AWS Secret Access Key and signing method.")


# --- request validation (what Converse answers with a 400) --------------------------------


def _bad(message: str) -> _Reject:
    return _Reject(400, "ValidationException", message)


def _check_image(img: Any, where: str) -> None:
    if not isinstance(img, dict) or img.get("format") not in ("png", "jpeg", "gif", "webp"):
        raise _bad(f"{where}.image.format: must be one of png, jpeg, gif, webp")
    src = img.get("source")
    data = src.get("bytes") if isinstance(src, dict) else None
    if not isinstance(data, str):
        raise _bad(f"{where}.image.source: bytes is required")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{where}.image.source.bytes: invalid base64") from None


def validate_converse(body: Any) -> None:
    if not isinstance(body, dict):
        raise _bad("Malformed input request, please reformat your input and try again.")
    extra = sorted(set(body) - _TOP_LEVEL)
    if extra:
        raise _bad(f"Malformed input request: extraneous key [{extra[0]}] is not permitted, "
                   "please reformat your input and try again.")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise _bad("A conversation must start with a user message. Try again with a "
                   "conversation that starts with a user message.")
    tool_blocks = False
    prev_uses: set[str] = set()
    for i, m in enumerate(msgs):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("user", "assistant"):
            raise _bad(f"messages.{i}.role: must be user or assistant")
        if i == 0 and role != "user":
            raise _bad("A conversation must start with a user message. Try again with a "
                       "conversation that starts with a user message.")
        if i > 0 and msgs[i - 1].get("role") == role:
            raise _bad("A conversation must alternate between user and assistant roles. "
                       "Make sure the conversation alternates between user and assistant "
                       "roles and try again.")
        content = m.get("content")
        if not isinstance(content, list) or not content:
            raise _bad(f"messages.{i}.content: must not be empty")
        uses: set[str] = set()
        results: list[str] = []
        for j, b in enumerate(content):
            where = f"messages.{i}.content.{j}"
            if not isinstance(b, dict) or len(b) != 1 or next(iter(b)) not in _BLOCK_KEYS:
                raise _bad(f"{where}: a content block must have exactly one known member")
            (kind, val), = b.items()
            if kind == "text" and (not isinstance(val, str) or not val.strip()):
                raise _bad(f"The text field in the ContentBlock object at {where} is blank. "
                           "Add text to the text field, and try again.")
            if kind == "image":
                _check_image(val, where)
            if kind == "toolUse":
                tool_blocks = True
                if role != "assistant" or not isinstance(val.get("input"), dict):
                    raise _bad(f"{where}.toolUse: input must be an object in an assistant turn")
                uses.add(val.get("toolUseId"))
            if kind == "toolResult":
                tool_blocks = True
                if role != "user" or val.get("status") not in (None, "success", "error"):
                    raise _bad(f"{where}.toolResult: must be in a user turn")
                rc = val.get("content")
                if not isinstance(rc, list) or not rc:
                    raise _bad(f"{where}.toolResult.content: must not be empty")
                for k, c in enumerate(rc):
                    if "text" in c and not str(c["text"]).strip():
                        raise _bad(f"The text field in {where}.toolResult.content.{k} is blank.")
                    if "image" in c:
                        _check_image(c["image"], f"{where}.toolResult.content.{k}")
                results.append(val.get("toolUseId"))
            if kind == "reasoningContent":
                rt = val.get("reasoningText")
                if role != "assistant" or (isinstance(rt, dict) and not rt.get("signature")):
                    raise _bad(f"{where}.reasoningContent.reasoningText.signature: required")
        if role == "user":
            if prev_uses and set(results) != prev_uses:
                raise _bad(f"Expected toolResult blocks at messages.{i}.content for the "
                           f"following Ids: {', '.join(sorted(prev_uses - set(results)))}")
            if results and not prev_uses:
                raise _bad(f"messages.{i}.content: toolResult without a preceding toolUse")
            prev_uses = set()
        else:
            prev_uses = uses
    tc = body.get("toolConfig")
    if tool_blocks and not isinstance(tc, dict):
        raise _bad("The toolConfig field must be defined when using toolUse and toolResult "
                   "content blocks.")
    if isinstance(tc, dict):
        tools = tc.get("tools")
        if not isinstance(tools, list) or not tools:
            raise _bad("toolConfig.tools: must not be empty")
        for k, t in enumerate(tools):
            spec = t.get("toolSpec") if isinstance(t, dict) else None
            if spec is None and not (isinstance(t, dict) and "cachePoint" in t):
                raise _bad(f"toolConfig.tools.{k}: toolSpec or cachePoint expected")
            if spec is not None and (not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", spec.get("name", ""))
                                     or not isinstance((spec.get("inputSchema") or {})
                                                       .get("json"), dict)):
                raise _bad(f"toolConfig.tools.{k}.toolSpec: name or inputSchema.json invalid")
        choice = tc.get("toolChoice")
        if choice is not None and (not isinstance(choice, dict) or len(choice) != 1
                                   or next(iter(choice)) not in ("auto", "any", "tool")):
            raise _bad("toolConfig.toolChoice: must be one of auto, any, tool")
    system = body.get("system")
    if system is not None:
        if not isinstance(system, list) or any(
                not isinstance(s, dict) or len(s) != 1 or next(iter(s)) not in
                ("text", "cachePoint", "guardContent") for s in system):
            raise _bad("system: a list of text / cachePoint blocks expected")
        if any("text" in s and not str(s["text"]).strip() for s in system):
            raise _bad("The text field in a system block is blank.")
    inf = body.get("inferenceConfig") or {}
    if set(inf) - {"maxTokens", "temperature", "topP", "stopSequences"}:
        raise _bad("inferenceConfig: unknown key")
    mt = inf.get("maxTokens")
    if mt is not None and (not isinstance(mt, int) or mt < 1):
        raise _bad("inferenceConfig.maxTokens: must be >= 1")
    thinking = (body.get("additionalModelRequestFields") or {}).get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024 or (mt is not None and budget >= mt):
            raise _bad("The model returned the following errors: `max_tokens` must be greater "
                       "than `thinking.budget_tokens`, and the budget at least 1024.")


def scenario_of(body: Any) -> str:
    msgs = body.get("messages") if isinstance(body, dict) else None
    for m in reversed(msgs if isinstance(msgs, list) else []):
        if not isinstance(m, dict) or m.get("role") != "user":
            continue
        for b in m.get("content") or []:
            found = _SCENARIO.search(b.get("text", "")) if isinstance(b, dict) else None
            if found:
                return found.group(1)
    return "text"


def has_tool_results(body: Any) -> bool:
    return any("toolResult" in b for m in body.get("messages", [])
               for b in m.get("content", []) if isinstance(b, dict))


def image_notes(body: Any) -> list[str]:
    return [image_note(data=base64.b64decode(b["image"]["source"]["bytes"]))
            for m in body.get("messages", []) if m.get("role") == "user"
            for b in m.get("content", []) if isinstance(b, dict) and "image" in b]


# --- the server ----------------------------------------------------------------------------

_ERRORS: dict[str, tuple[int, str | None, str]] = {
    "error400": (400, "ValidationException", "Input is too long for requested model."),
    "error403": (403, "AccessDeniedException",
                 "You don't have access to the model with the specified model ID."),
    "error404": (404, "ResourceNotFoundException",
                 "Could not resolve the foundation model from the provided model identifier."),
    "error408": (408, "ModelTimeoutException", "Model has timed out in processing the request."),
    "error424": (424, "ModelErrorException", "The model returned an error: overloaded."),
    "error429": (429, "ThrottlingException", "Too many requests, please wait before trying "
                 "again."),
    "error500": (500, "InternalServerException", "The server encountered an internal error "
                 "while processing the request."),
    "error503": (503, "ServiceUnavailableException", "Bedrock is unable to process your "
                 "request."),
    "overloaded": (503, "ServiceUnavailableException", "Bedrock is unable to process your "
                   "request."),
}
_ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"


class FakeBedrock(FakeUpstream):
    """See the module docstring."""

    def vendor_routes(self, app: web.Application) -> None:
        app.router.add_post("/model/{tail:.*}", self._bedrock)
        app.router.add_get("/images/red.png", self._image)

    async def _image(self, request: web.Request) -> web.StreamResponse:
        """The shared PNG, for image-URL tests (dragoman fetches it itself)."""
        rec = await self._record(request, "image")
        return self._done(rec, web.Response(body=IMAGE_PNG, content_type="image/png"))

    async def _bedrock(self, request: web.Request) -> web.StreamResponse:
        m = _PATH.match(request.raw_path)
        rec = await self._record(request, "bedrock")
        rec.path = request.raw_path
        rec.stream = bool(m and m.group(2) == "converse-stream")
        rec.scenario = scenario_of(rec.body)
        rec.model = unquote(m.group(1)) if m else ""  # type: ignore[attr-defined]
        try:
            if m is None:
                raise _Reject(404, "UnknownOperationException", "Unknown operation")
            check_sigv4(request, rec.raw, rec.headers)
            if rec.headers.get("content-type") != "application/json":
                raise _bad("content-type must be application/json")
            validate_converse(rec.body)
        except _Reject as e:
            return self._aws_error(rec, e.status, e.etype, e.message)
        scen = rec.scenario
        if scen == "tools" and has_tool_results(rec.body):
            scen = "followup"
        if scen == "error413":
            resp = web.Response(status=413, text="<html><body><h1>413 Request Entity Too Large"
                                "</h1></body></html>", content_type="text/html")
            return self._done(rec, resp)
        if scen in _ERRORS:
            status, etype, message = _ERRORS[scen]
            return self._aws_error(rec, status, etype, message)
        if not rec.stream:
            if scen in ("cut", "malformed"):
                return await self._broken_json(request, rec, b'{"output":{"message":{"role":')
            if scen in ("midstream_error", "stream_throttled", "throttled_start", "badprelude"):
                status, etype, message = _ERRORS["error500"]
                return self._aws_error(rec, status, etype, message)
            return self._json(rec, self._converse(scen, rec.body),
                              headers={"x-amzn-RequestId": "fake-req-json-01"})
        return await self._event_stream(request, rec, self._frames(scen, rec.body))

    def _aws_error(self, rec: Recorded, status: int, etype: str | None,
               message: str) -> web.Response:
        headers = {"x-amzn-RequestId": "fake-req-err-01"}
        if etype is not None:
            headers["x-amzn-ErrorType"] = etype + _ERROR_TYPE_SUFFIX
        return self._json(rec, {"message": message}, status, headers)

    async def _event_stream(self, request: web.Request, rec: Recorded,
                            frames: list[bytes]) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={
            "content-type": "application/vnd.amazon.eventstream",
            "x-amzn-RequestId": "fake-req-stream-01"})
        rec.status = 200
        try:
            await resp.prepare(request)
            for piece in frames:
                if piece is CUT:
                    return self._cut(request, rec, resp)
                await resp.write(piece)
            await resp.write_eof()
        except (ConnectionError, OSError):
            self._gone(rec)
            raise
        return self._done(rec, resp)

    # --- answers -------------------------------------------------------------------------

    @staticmethod
    def _converse(scen: str, body: Any) -> dict[str, Any]:
        usage: dict[str, Any] = TEXT_USAGE
        stop = "end_turn"
        content: list[dict[str, Any]]
        if scen == "tools":
            content = [{"text": PREAMBLE},
                       {"toolUse": {"toolUseId": BEDROCK_TOOL_IDS[0], "name": "get_weather",
                                    "input": {"city": "Paris"}}},
                       {"toolUse": {"toolUseId": BEDROCK_TOOL_IDS[1], "name": "get_time",
                                    "input": {}}}]
            stop, usage = "tool_use", TOOLS_USAGE
        elif scen == "followup":
            content = [{"text": "".join(FOLLOWUP_CHUNKS)}]
        elif scen == "thinking":
            content = [{"reasoningContent": {"reasoningText": {
                           "text": "".join(THINKING_CHUNKS), "signature": BEDROCK_SIGNATURE}}},
                       {"text": "".join(THINK_ANSWER_CHUNKS)}]
            usage = THINK_USAGE
        elif scen == "truncated":
            content, stop = [{"text": "".join(TRUNCATED_CHUNKS)}], "max_tokens"
        elif scen == "image":
            content = [{"text": image_answer(image_notes(body))}]
        else:
            content = [{"text": "".join(TEXT_CHUNKS)}]
        return {"output": {"message": {"role": "assistant", "content": content}},
                "stopReason": stop, "usage": usage, "metrics": {"latencyMs": 312}}

    @staticmethod
    def _frames(scen: str, body: Any) -> list[bytes]:
        start = event("messageStart", {"role": "assistant"})

        def text(index: int, chunks: Iterable[str]) -> list[bytes]:
            # Text blocks come without a contentBlockStart, as Converse sends them.
            return [*(event("contentBlockDelta", {"contentBlockIndex": index,
                                                  "delta": {"text": c}}) for c in chunks),
                    event("contentBlockStop", {"contentBlockIndex": index})]

        def end(stop: str, usage: dict[str, Any]) -> list[bytes]:
            return [event("messageStop", {"stopReason": stop}),
                    event("metadata", {"usage": usage, "metrics": {"latencyMs": 640}})]

        def call(index: int, tid: str, name: str, pieces: list[str]) -> list[bytes]:
            return [event("contentBlockStart", {"contentBlockIndex": index, "start": {
                        "toolUse": {"toolUseId": tid, "name": name}}}),
                    *(event("contentBlockDelta", {"contentBlockIndex": index,
                                                  "delta": {"toolUse": {"input": p}}})
                      for p in pieces),
                    event("contentBlockStop", {"contentBlockIndex": index})]

        frames: list[bytes]
        if scen == "tools":
            frames = [start, *text(0, ("Let me", " check.")),
                      *call(1, BEDROCK_TOOL_IDS[0], "get_weather", ['{"city":', '"Paris"}']),
                      *call(2, BEDROCK_TOOL_IDS[1], "get_time", [""]),
                      *end("tool_use", TOOLS_USAGE)]
        elif scen == "followup":
            frames = [start, *text(0, FOLLOWUP_CHUNKS), *end("end_turn", TEXT_USAGE)]
        elif scen == "thinking":
            frames = [start,
                      *(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {
                          "reasoningContent": {"text": c}}}) for c in THINKING_CHUNKS),
                      event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {
                          "reasoningContent": {"signature": BEDROCK_SIGNATURE}}}),
                      event("contentBlockStop", {"contentBlockIndex": 0}),
                      *text(1, THINK_ANSWER_CHUNKS), *end("end_turn", THINK_USAGE)]
        elif scen == "truncated":
            frames = [start, *text(0, TRUNCATED_CHUNKS), *end("max_tokens", TEXT_USAGE)]
        elif scen == "image":
            frames = [start, *text(0, [image_answer(image_notes(body))]),
                      *end("end_turn", TEXT_USAGE)]
        elif scen == "midstream_error":
            frames = [start, *text(0, [PARTIAL]),
                      exception("modelStreamErrorException",
                                "The model produced an error while generating.")]
        elif scen == "throttled_start":
            frames = [start, exception("throttlingException", "Too many requests, please "
                                       "wait before trying again.")]
        elif scen == "stream_throttled":
            frames = [start, *text(0, [PARTIAL]),
                      exception("throttlingException", "Too many tokens, please wait before "
                                "trying again.")]
        elif scen == "cut":
            partial = event("contentBlockDelta", {"contentBlockIndex": 0,
                                                  "delta": {"text": " and more"}})
            return [*slices([start, *text(0, [PARTIAL])[:1]]), partial[:len(partial) // 2],
                    CUT]
        elif scen in ("malformed", "badprelude"):
            bad = event("contentBlockDelta", {"contentBlockIndex": 0,
                                              "delta": {"text": " corrupted"}},
                        bad_message_crc=scen == "malformed",
                        bad_prelude_crc=scen == "badprelude")
            frames = [start, *text(0, [PARTIAL])[:1], bad, *end("end_turn", TEXT_USAGE)]
        else:
            frames = [start, *text(0, TEXT_CHUNKS), *end("end_turn", TEXT_USAGE)]
        return slices(frames)

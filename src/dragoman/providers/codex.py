"""The ChatGPT Codex subscription backend: the Responses dialect with ChatGPT's envelope.

``POST {base}/codex/responses`` (base ``https://chatgpt.com/backend-api``) with a ChatGPT
OAuth access token and the account id. The backend only streams, so a non-stream caller
gets the collected stream.

Credentials belong to the caller: a ``CodexCredentials`` (static), or a sync or async
callable returning one, asked before EVERY request (so the caller can rotate tokens). A
callable that takes a ``refresh`` keyword is told ``refresh=True`` when the backend
refused the previous token (401); it is asked once more, then the 401 stands.

Body contract (the backend answers ``400 {"detail": ...}`` otherwise): ``stream: true``,
``store: false``, non-empty ``instructions``, ``include: ["reasoning.encrypted_content"]``;
never ``max_output_tokens`` / ``temperature`` / ``top_p`` / ``metadata``. A spent plan is
a 429 ``usage_limit_reached`` whose reset time becomes the retry delay.

What tkach's Codex provider sends, kept: ``text: {"verbosity": "low"}`` unless the client
chose a verbosity (``text_verbosity=None`` sends none); with tools, ``tool_choice: "auto"``
and ``parallel_tool_calls: true`` unless the client chose; input items without ``status``
(output-only; the backend rejects it on input); tool-call ids of tkach's form
``call_x|fc_y`` split into ``call_id: call_x`` and item ``id: fc_y``. Unlike tkach,
``temperature`` is dropped: the Codex CLI never sends it, the backend's models are
reasoning models that reject a temperature, and the protocol notes list it as refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from ..core import (
    NO_CONTEXT,
    ChatRequest,
    ChatResponse,
    DragomanError,
    RequestContext,
    Text,
    acollect,
    new_id,
)
from ..dialects.openai_responses import DIALECT as OPENAI_RESPONSES
from ..dialects.openai_responses import parse_error as responses_parse_error
from ..net import UpstreamResponse
from .base import HttpDialectProvider
from .callables import accepts_keyword, call
from .registry import OptionsError, ProviderSpec

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

CODEX_VERSION = "0.169.0"
DEFAULT_INSTRUCTIONS = "You are a helpful assistant."
DEFAULT_VERBOSITY = "low"
_ENCRYPTED = "reasoning.encrypted_content"
#: body keys the backend refuses ("Unsupported parameter") or that make no sense there
_REFUSED = ("max_output_tokens", "temperature", "top_p", "metadata", "previous_response_id")


class CodexCredentials:
    """A ChatGPT access token and account id. Also a credentials provider that always
    returns itself (the static case). Never shows the token in a repr."""

    __slots__ = ("access_token", "account_id")

    def __init__(self, access_token: str, account_id: str) -> None:
        if not access_token or not account_id:
            raise ValueError("CodexCredentials needs an access_token and an account_id")
        self.access_token = access_token
        self.account_id = account_id

    def __call__(self, refresh: bool = False) -> CodexCredentials:
        return self

    def __repr__(self) -> str:
        return "CodexCredentials(access_token=<redacted>, account_id=<redacted>)"

    __str__ = __repr__


CredentialsProvider = Callable[..., CodexCredentials | Awaitable[CodexCredentials]]


def _reset_delay(body: bytes) -> float | None:
    """``usage_limit_reached``'s ``resets_in_seconds`` (or ``resets_at``, a unix time)."""
    try:
        obj = _decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    err = obj.get("error") if isinstance(obj, dict) else None
    if not isinstance(err, dict):
        return None
    secs = err.get("resets_in_seconds")
    if isinstance(secs, (int, float)) and not isinstance(secs, bool):
        return max(0.0, float(secs))
    at = err.get("resets_at")
    if isinstance(at, (int, float)) and not isinstance(at, bool):
        return max(0.0, float(at) - time.time())
    return None


def parse_error(status: int, body: bytes) -> DragomanError:
    """The Responses reading (``{"detail": ...}`` included) plus the plan's reset time."""
    err = responses_parse_error(status, body)
    if err.retry_after is None and status == 429:
        err.retry_after = _reset_delay(body)
    return err


CODEX_RESPONSES = dataclasses.replace(OPENAI_RESPONSES, parse_error=parse_error)


def default_user_agent(originator: str) -> str:
    """What Codex CLI sends: ``<originator>/<version> (<os> <release>; <arch>) <terminal>``."""
    return (f"{originator}/{CODEX_VERSION} ({platform.system()} {platform.release()}; "
            f"{platform.machine()}) dragoman")


def session_id(body: dict[str, Any]) -> str:
    """The conversation's cache key: the client's ``prompt_cache_key`` if it sent one, else
    a UUID derived from how the conversation starts (its instructions and first input
    item), so every turn of one conversation lands on the same cache without state."""
    key = body.get("prompt_cache_key")
    if isinstance(key, str) and key:
        return key
    inp = body.get("input")
    first = inp[0] if isinstance(inp, list) and inp else inp
    seed = _encode([body.get("model"), body.get("instructions"), first])
    return str(uuid.UUID(bytes=hashlib.sha256(seed).digest()[:16], version=4))


def hoist_system(req: ChatRequest) -> ChatRequest:
    """A client that gave no instructions but opened with ``system`` messages (a Chat
    client) meant those as the instructions: the backend gets them there. ``developer``
    messages stay in the input, where Codex itself puts its base prompt."""
    if req.system:
        return req
    n = 0
    while n < len(req.messages) and req.messages[n].role == "system":
        n += 1
    if n == 0:
        return req
    texts = [Text(text=m.text()) for m in req.messages[:n] if m.text()]
    return msgspec.structs.replace(req, system=texts or None, messages=req.messages[n:])


def codex_input(items: list[Any]) -> list[Any]:
    """Input items as the backend takes them: no ``status`` on any item, and tkach's
    composite tool-call ids (``call_x|fc_y``) split into the call id and the item id."""
    out = []
    for item in items:
        if not isinstance(item, dict):
            out.append(item)
            continue
        item = {k: v for k, v in item.items() if k != "status"}
        call_id = item.get("call_id")
        if isinstance(call_id, str) and "|" in call_id:
            call, _, item_id = call_id.partition("|")
            item["call_id"] = call
            if item.get("type") in ("function_call", "custom_tool_call") and item_id:
                item["id"] = item_id
        out.append(item)
    return out


class Codex(HttpDialectProvider):
    dialect = CODEX_RESPONSES
    default_base_url = "https://chatgpt.com/backend-api"

    def __init__(self, *, model: str, credentials: CodexCredentials | CredentialsProvider,
                 originator: str = "codex_cli_rs", user_agent: str | None = None,
                 reasoning_effort: str | None = None, reasoning_summary: str | None = "auto",
                 instructions: str = DEFAULT_INSTRUCTIONS,
                 text_verbosity: str | None = DEFAULT_VERBOSITY, **kw: Any) -> None:
        if kw.get("api_key"):
            raise ValueError("Codex authenticates with CodexCredentials, not an api_key")
        kw.pop("api_key", None)
        super().__init__(model=model, **kw)
        self._credentials = credentials
        self._pass_refresh = accepts_keyword(credentials, "refresh")
        self._originator = originator
        self._user_agent = user_agent or default_user_agent(originator)
        self._effort = reasoning_effort
        self._summary = reasoning_summary if reasoning_summary not in ("none", "off") else None
        self._instructions = instructions or DEFAULT_INSTRUCTIONS
        self._verbosity = text_verbosity

    def __repr__(self) -> str:  # never the token
        return f"Codex(model={self.model!r}, base_url={self.http.base_url!r})"

    def path(self, req: ChatRequest, stream: bool) -> str:
        return "/codex/responses"

    def prepare(self, body: dict[str, Any], req: ChatRequest, stream: bool) -> dict[str, Any]:
        for key in _REFUSED:
            body.pop(key, None)
        body["stream"] = True
        body["store"] = False
        if not body.get("instructions"):
            body["instructions"] = self._instructions
        include = body.get("include")
        if not isinstance(include, list):
            body["include"] = [_ENCRYPTED]
        elif _ENCRYPTED not in include:
            include.append(_ENCRYPTED)
        reasoning = body.get("reasoning")
        if not isinstance(reasoning, dict):
            reasoning = {}
        if self._effort is not None:
            reasoning.setdefault("effort", self._effort)
        if self._summary is None:
            reasoning.pop("summary", None)
        else:
            reasoning.setdefault("summary", self._summary)
        if reasoning:
            body["reasoning"] = reasoning
        else:
            body.pop("reasoning", None)
        if isinstance(body.get("input"), list):
            body["input"] = codex_input(body["input"])
        if self._verbosity is not None:
            text = body.get("text")
            body["text"] = {"verbosity": self._verbosity, **(text if isinstance(text, dict)
                                                                else {})}
        if body.get("tools"):
            body.setdefault("tool_choice", "auto")
            body.setdefault("parallel_tool_calls", True)
        body["prompt_cache_key"] = session_id(body)
        return body

    async def _ask(self, refresh: bool) -> CodexCredentials:
        got = await (call(self._credentials, refresh=refresh) if self._pass_refresh
                     else call(self._credentials))
        if not isinstance(got, CodexCredentials):
            raise TypeError("a Codex credentials provider must return CodexCredentials")
        return got

    async def send(self, req: ChatRequest, stream: bool,
                   ctx: RequestContext = NO_CONTEXT) -> UpstreamResponse:
        body = self.prepare(self.dialect.render_request(
            msgspec.structs.replace(hoist_system(req), model=self.model, stream=True)), req, True)
        raw = _encode(body)
        headers = self.request_headers(req, True, ctx)
        headers["openai-beta"] = "responses=experimental"
        headers["originator"] = self._originator
        headers["user-agent"] = self._user_agent
        headers["session_id"] = body["prompt_cache_key"]
        for refresh in (False, True):
            creds = await self._ask(refresh)
            headers["authorization"] = f"Bearer {creds.access_token}"
            headers["chatgpt-account-id"] = creds.account_id
            resp = await self.http.request("POST", "/codex/responses", body=raw,
                                           headers=headers)
            if resp.status != 401 or refresh:
                return resp
            await resp.read()  # the refused attempt: drain it, keep the connection
            resp.release()
        raise AssertionError("unreachable")

    async def complete(self, req: ChatRequest, ctx: RequestContext = NO_CONTEXT) -> ChatResponse:
        """The backend only streams: collect it."""
        return await acollect(self.stream(req, ctx), new_id("resp_"), self.model, int(time.time()))


class CodexOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``codex`` config keys beyond the common ones (use ``${ENV}`` for the secrets)."""

    access_token: str
    account_id: str
    originator: str = "codex_cli_rs"
    user_agent: str | None = None
    reasoning_effort: str | None = None
    reasoning_summary: str | None = "auto"
    instructions: str = DEFAULT_INSTRUCTIONS
    text_verbosity: str | None = DEFAULT_VERBOSITY


def from_spec(spec: ProviderSpec) -> Codex:
    if spec.api_key:
        raise OptionsError("codex takes `access_token` and `account_id`, not `api_key` - at `$`")
    opts = spec.parse_options(CodexOptions)
    kw = spec.http_kwargs()
    kw.pop("api_key")
    return Codex(**kw, credentials=CodexCredentials(opts.access_token, opts.account_id),
                 originator=opts.originator, user_agent=opts.user_agent,
                 reasoning_effort=opts.reasoning_effort,
                 reasoning_summary=opts.reasoning_summary, instructions=opts.instructions,
                 text_verbosity=opts.text_verbosity)

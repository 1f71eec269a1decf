"""The ChatGPT Codex backend against a fake on loopback: the envelope (headers, body
contract), the caller-owned credentials provider (asked before every request, told to
refresh once after a 401), stream collection for non-stream callers, ``response.done``,
the backend's error shapes, and that no token ever shows in a repr, a log or an error."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from dragoman.config import ConfigError, build_gateway, parse_config
from dragoman.core import (
    BudgetExhausted,
    ContextLengthExceeded,
    ErrorKind,
    InvalidRequest,
    Message,
    Reasoning,
    StopReason,
    Text,
    Thinking,
    ToolResult,
    UpstreamError,
    acollect,
)
from dragoman.providers.codex import DEFAULT_INSTRUCTIONS, Codex, CodexCredentials
from dragoman.providers.registry import ProviderSpec
from tests.fakes.codex import ACCOUNT_ID, CODEX_TOKENS, USAGE_RESET_SECONDS, FakeCodex
from tests.fakes.upstream import ENCRYPTED_REASONING, PARTIAL, TEXT, THINK_ANSWER, THINKING

from .failures import HTTP_FAILURES, RETRY_AFTER_SECONDS, outcome, request

MODEL = "gpt-5-fake"
STATIC = CodexCredentials(CODEX_TOKENS[0], ACCOUNT_ID)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeCodex]:
    with FakeCodex() as f:
        yield f


@pytest.fixture
async def codex(fake: FakeCodex) -> AsyncIterator[Codex]:
    p = Codex(model=MODEL, base_url=fake.url + "/backend-api", credentials=STATIC)
    yield p
    await p.aclose()


@pytest.mark.parametrize("stream", [False, True])
async def test_envelope(stream: bool, codex: Codex, fake: FakeCodex) -> None:
    req = request("text", stream, temperature=0.2, top_p=0.5, max_tokens=99,
                  metadata={"k": "v"})
    resp = await (acollect(codex.stream(req), "x", "m") if stream else codex.complete(req))
    assert resp.text() == TEXT
    assert resp.usage.input_tokens == 12 and resp.usage.output_tokens == 8
    rec = fake.requests[-1]
    assert rec.path == "/backend-api/codex/responses"
    h = rec.headers
    assert h["authorization"] == f"Bearer {CODEX_TOKENS[0]}"
    assert h["chatgpt-account-id"] == ACCOUNT_ID
    assert h["openai-beta"] == "responses=experimental"
    assert h["originator"] == "codex_cli_rs"
    assert h["user-agent"].startswith("codex_cli_rs/")
    assert h["accept"] == "text/event-stream"
    b = rec.body
    # the backend only streams: a non-stream caller still gets a stream, collected
    assert b["stream"] is True and b["store"] is False
    assert b["include"] == ["reasoning.encrypted_content"]
    assert b["instructions"] == DEFAULT_INSTRUCTIONS
    assert b["reasoning"] == {"summary": "auto"}
    for refused in ("max_output_tokens", "temperature", "top_p", "metadata"):
        assert refused not in b
    assert h["session_id"] == b["prompt_cache_key"]


async def test_session_id_stable_per_conversation(codex: Codex, fake: FakeCodex) -> None:
    first = request("text", True)
    await acollect(codex.stream(first), "x", "m")
    s1 = fake.requests[-1].headers["session_id"]
    # the same conversation one turn later: same cache key, no state kept anywhere
    later = request("text", True)
    later.messages += [Message(role="assistant", content=[Text(text=TEXT)]),
                       Message(role="user", content=[Text(text="and then?")])]
    await acollect(codex.stream(later), "x", "m")
    assert fake.requests[-1].headers["session_id"] == s1
    other = request("tools", True)
    await acollect(codex.stream(other), "x", "m")
    assert fake.requests[-1].headers["session_id"] != s1


async def test_client_cache_key_wins(codex: Codex, fake: FakeCodex) -> None:
    req = request("text", True)
    req.dialect = "openai_responses"
    req.extra = {"prompt_cache_key": "thread-0123"}
    await acollect(codex.stream(req), "x", "m")
    rec = fake.requests[-1]
    assert rec.headers["session_id"] == rec.body["prompt_cache_key"] == "thread-0123"


async def test_instructions_reasoning_and_options(fake: FakeCodex) -> None:
    p = Codex(model=MODEL, base_url=fake.url + "/backend-api", credentials=STATIC,
              originator="my_app", user_agent="my_app/1.0", reasoning_effort="low",
              reasoning_summary="none")
    try:
        req = request("thinking", False, system=[Text(text="Answer in French.")])
        resp = await p.complete(req)
        b = fake.requests[-1].body
        assert b["instructions"] == "Answer in French."
        assert b["reasoning"] == {"effort": "low"}  # the summary turned off
        assert fake.requests[-1].headers["originator"] == "my_app"
        assert fake.requests[-1].headers["user-agent"] == "my_app/1.0"
        req = request("text", False, reasoning=Reasoning(effort="high", summary="detailed"))
        await p.complete(req)
        assert fake.requests[-1].body["reasoning"] == {"effort": "high"}
    finally:
        await p.aclose()
    thinking = [x for x in resp.content if isinstance(x, Thinking)]
    assert resp.text() == THINK_ANSWER
    assert thinking[0].text == THINKING and thinking[0].signature == ENCRYPTED_REASONING


@pytest.mark.parametrize("stream", [False, True])
async def test_response_done_terminates(stream: bool, codex: Codex) -> None:
    req = request("done", stream)
    resp = await (acollect(codex.stream(req), "x", "m") if stream else codex.complete(req))
    assert resp.text() == TEXT and resp.stop_reason is StopReason.END_TURN


async def test_tool_round_trip(codex: Codex, fake: FakeCodex) -> None:
    req = request("tools", False)
    first = await codex.complete(req)
    calls = first.tool_calls()
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    req.messages += [Message(role="assistant", content=first.content),
                     Message(role="tool", content=[
                         ToolResult(call_id=c.id, content=[Text(text="ok")]) for c in calls])]
    second = await codex.complete(req)
    assert second.text().startswith("It is 18C")
    items = fake.requests[-1].body["input"]
    assert [i.get("type") for i in items[-2:]] == ["function_call_output"] * 2


# --- credentials ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_provider_asked_before_every_request(kind: str, fake: FakeCodex) -> None:
    asked = 0

    def creds() -> CodexCredentials:
        nonlocal asked
        asked += 1
        return CodexCredentials(CODEX_TOKENS[0], ACCOUNT_ID)

    async def acreds() -> CodexCredentials:
        await asyncio.sleep(0)
        return creds()

    p = Codex(model=MODEL, base_url=fake.url + "/backend-api",
              credentials=creds if kind == "sync" else acreds)
    try:
        for stream in (False, True, False):
            got = await outcome(p, "text", stream)
            assert got.error is None and got.text == TEXT
    finally:
        await p.aclose()
    assert asked == 3


async def test_refresh_once_after_401(fake: FakeCodex) -> None:
    calls: list[bool] = []

    async def creds(refresh: bool) -> CodexCredentials:
        calls.append(refresh)
        return CodexCredentials(CODEX_TOKENS[1] if refresh else CODEX_TOKENS[0], ACCOUNT_ID)

    fake.tokens = {CODEX_TOKENS[1]}  # the first token has expired
    p = Codex(model=MODEL, base_url=fake.url + "/backend-api", credentials=creds)
    try:
        n = len(fake.requests)
        got = await outcome(p, "text", True)
        assert got.error is None and got.text == TEXT
        assert calls == [False, True]
        assert [r.status for r in fake.requests[n:]] == [401, 200]
        assert fake.requests[-1].headers["authorization"] == f"Bearer {CODEX_TOKENS[1]}"
    finally:
        fake.tokens = {CODEX_TOKENS[0]}
        await p.aclose()


@pytest.mark.parametrize("stream", [False, True])
async def test_refresh_that_does_not_help_fails(stream: bool, fake: FakeCodex,
                                                caplog: pytest.LogCaptureFixture) -> None:
    calls: list[bool] = []

    def creds(refresh: bool = False) -> CodexCredentials:
        calls.append(refresh)
        return CodexCredentials("expired-token-abcdef", ACCOUNT_ID)

    p = Codex(model=MODEL, base_url=fake.url + "/backend-api", credentials=creds)
    caplog.set_level(logging.DEBUG)
    try:
        got = await outcome(p, "text", stream)
    finally:
        await p.aclose()
    assert calls == [False, True]
    assert isinstance(got.error, UpstreamError) and got.error.status == 502
    assert "expired" in got.error.message  # the backend's reason, not the token
    for text in (got.error.message, repr(got.error), caplog.text):
        assert "expired-token-abcdef" not in text


async def test_zero_argument_provider_is_asked_again_after_401(fake: FakeCodex) -> None:
    tokens = iter(CODEX_TOKENS)

    def creds() -> CodexCredentials:
        return CodexCredentials(next(tokens), ACCOUNT_ID)

    fake.tokens = {CODEX_TOKENS[1]}
    p = Codex(model=MODEL, base_url=fake.url + "/backend-api", credentials=creds)
    try:
        assert (await p.complete(request("text", False))).text() == TEXT
    finally:
        fake.tokens = {CODEX_TOKENS[0]}
        await p.aclose()


def test_secrets_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    creds = CodexCredentials(CODEX_TOKENS[0], ACCOUNT_ID)
    p = Codex(model=MODEL, credentials=creds)
    spec = ProviderSpec(name="c", provider="codex", model=MODEL,
                        options={"access_token": CODEX_TOKENS[0], "account_id": ACCOUNT_ID})
    for text in (repr(creds), str(creds), repr(p), repr(spec), f"{creds!r} {p}"):
        assert CODEX_TOKENS[0] not in text and ACCOUNT_ID not in text


def test_config() -> None:
    gw = build_gateway(parse_config({"models": [{
        "name": "cx", "provider": "codex", "model": MODEL,
        "access_token": CODEX_TOKENS[0], "account_id": ACCOUNT_ID,
        "reasoning_summary": None, "originator": "x"}]}))
    assert gw is not None
    with pytest.raises(ConfigError, match="account_id"):
        build_gateway(parse_config({"models": [{
            "name": "cx", "provider": "codex", "model": MODEL,
            "access_token": CODEX_TOKENS[0]}]}))
    with pytest.raises(ConfigError, match="api_key"):
        build_gateway(parse_config({"models": [{
            "name": "cx", "provider": "codex", "model": MODEL, "api_key": "sk-x",
            "access_token": CODEX_TOKENS[0], "account_id": ACCOUNT_ID}]}))
    with pytest.raises(ConfigError) as ei:
        build_gateway(parse_config({"models": [{
            "name": "cx", "provider": "codex", "model": MODEL,
            "access_token": CODEX_TOKENS[0], "account_id": ACCOUNT_ID, "summary": "x"}]}))
    assert CODEX_TOKENS[0] not in str(ei.value)


# --- the backend's errors -------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_usage_limit(stream: bool, codex: Codex) -> None:
    got = await outcome(codex, "usage_limit", stream)
    assert isinstance(got.error, BudgetExhausted) and got.error.status == 429
    assert got.error.retry_after == USAGE_RESET_SECONDS


async def test_detail_errors(fake: FakeCodex) -> None:
    p = Codex(model="gpt-4o-not-in-plan", base_url=fake.url + "/backend-api",
              credentials=STATIC)
    try:
        got = await outcome(p, "text", False)
    finally:
        await p.aclose()
    assert isinstance(got.error, InvalidRequest)
    assert got.error.message == ("The 'gpt-4o-not-in-plan' model is not supported when using "
                                 "Codex with a ChatGPT account.")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("scenario", sorted(HTTP_FAILURES))
async def test_http_failures(scenario: str, stream: bool, codex: Codex) -> None:
    got = await outcome(codex, scenario, stream)
    assert got.error is not None and not got.in_band
    assert got.error.kind == HTTP_FAILURES[scenario]
    if scenario == "error429":
        assert got.error.retry_after == RETRY_AFTER_SECONDS


async def test_context_length(codex: Codex) -> None:
    got = await outcome(codex, "error400", True)
    assert isinstance(got.error, ContextLengthExceeded)


@pytest.mark.parametrize("stream", [False, True])
async def test_cut_malformed_and_failed(stream: bool, codex: Codex) -> None:
    cut = await outcome(codex, "cut", stream)
    assert cut.error is not None and cut.error.kind == ErrorKind.TRANSPORT
    # The Responses parser skips a frame it cannot read; the rest of the answer counts.
    bad = await outcome(codex, "malformed", stream)
    assert bad.error is None and bad.text == PARTIAL
    failed = await outcome(codex, "midstream_error", stream)
    assert failed.error is not None and failed.error.kind == ErrorKind.UPSTREAM
    if stream:
        assert cut.in_band and cut.text == PARTIAL
        assert failed.in_band and failed.text == PARTIAL


async def test_chat_system_messages_become_instructions(codex: Codex, fake: FakeCodex) -> None:
    req = request("text", True)
    req.messages[:0] = [Message(role="system", content=[Text(text="Be terse.")]),
                        Message(role="developer", content=[Text(text="Use tools.")])]
    await acollect(codex.stream(req), "x", "m")
    b = fake.requests[-1].body
    assert b["instructions"] == "Be terse."
    # developer messages stay in the input, where Codex itself keeps its base prompt
    assert b["input"][0]["role"] == "developer"

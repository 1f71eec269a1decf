"""The Bedrock provider against ``FakeBedrock`` on loopback: Converse and ConverseStream
over real sockets, every request SigV4-verified by the fake (or a Bedrock API key)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dragoman.core import (
    ChatRequest,
    ErrorKind,
    Image,
    InvalidRequest,
    Message,
    Reasoning,
    StopReason,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolResult,
    acollect,
)
from dragoman.net.fetch import FetchPolicy
from dragoman.providers.bedrock import Bedrock, from_spec
from dragoman.providers.registry import OptionsError, ProviderSpec
from tests.fakes.bedrock import (
    AWS_KEY_ID,
    AWS_SECRET,
    BEDROCK_API_KEY,
    BEDROCK_SIGNATURE,
    BEDROCK_TOOL_IDS,
    REGION,
    TEMP_KEY_ID,
    TEMP_SECRET,
    TEMP_TOKEN,
    FakeBedrock,
)
from tests.fakes.upstream import (
    FOLLOWUP,
    IMAGE_PNG,
    IMAGE_PNG_B64,
    PARTIAL,
    PREAMBLE,
    TEXT,
    THINK_ANSWER,
    THINKING,
    TRUNCATED,
    image_answer,
    image_note,
)

from .failures import HTTP_FAILURES, outcome

MODEL = "us.anthropic.claude-sonnet-4-20250514-v1:0"
LOOPBACK = FetchPolicy(allowed_content_types=("image/",), allow_hosts=frozenset({"127.0.0.1"}))


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as f:
        yield f


def spec(fake: FakeBedrock, model: str = MODEL, api_key: str | None = None,
         fetch_policy: FetchPolicy | None = LOOPBACK, **options: Any) -> ProviderSpec:
    if api_key is None and not options:
        options = {"aws_access_key_id": AWS_KEY_ID, "aws_secret_access_key": AWS_SECRET}
    return ProviderSpec(name="br", provider="bedrock", model=model, base_url=fake.url,
                        api_key=api_key, options={"region": REGION, **options},
                        fetch_policy=fetch_policy)


@pytest.fixture
async def provider(fake: FakeBedrock) -> Any:
    p = from_spec(spec(fake))
    yield p
    await p.aclose()


def ask(text: str, **kw: Any) -> ChatRequest:
    return ChatRequest(model="client-model", messages=[
        Message(role="user", content=[Text(text=text)])], **kw)


async def both(p: Bedrock, req: ChatRequest) -> list[Any]:
    """The answer via Converse and via ConverseStream (collected)."""
    return [await p.complete(req), await acollect(p.stream(req), "id", "m")]


async def test_text_and_usage(provider: Bedrock, fake: FakeBedrock) -> None:
    for r in await both(provider, ask("scenario:text hello", system=[Text(text="Be terse.")])):
        assert r.text() == TEXT and r.stop_reason is StopReason.END_TURN
        # inputTokens 21 + 100 cache reads + 5 cache writes
        assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.cached_tokens,
                r.usage.cache_write_tokens) == (126, 9, 100, 5)
    plain, stream = fake.requests[-2:]
    assert plain.path == "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse"
    assert stream.path.endswith("v1%3A0/converse-stream")
    assert stream.headers["accept"] == "application/vnd.amazon.eventstream"
    assert plain.body == {"messages": [{"role": "user", "content": [{"text":
                                                                      "scenario:text hello"}]}],
                          "system": [{"text": "Be terse."}]}
    assert plain.headers["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/")


async def test_an_arn_model_id_is_encoded_and_signed_as_sent(fake: FakeBedrock) -> None:
    arn = "arn:aws:bedrock:eu-west-3:123456789012:inference-profile/eu.anthropic.claude-v1:0"
    p = from_spec(spec(fake, model=arn))
    try:
        assert (await p.complete(ask("hi"))).text() == TEXT
    finally:
        await p.aclose()
    assert fake.requests[-1].path == ("/model/arn%3Aaws%3Abedrock%3Aeu-west-3%3A123456789012"
                                      "%3Ainference-profile%2Feu.anthropic.claude-v1%3A0/converse")


async def test_parallel_tool_calls_then_the_results(provider: Bedrock,
                                                    fake: FakeBedrock) -> None:
    tools = [Tool(name="get_weather", parameters={"type": "object", "properties": {
                 "city": {"type": "string"}}}), Tool(name="get_time")]
    req = ask("scenario:tools go", tools=tools)
    for r in await both(provider, req):
        assert r.text() == PREAMBLE and r.stop_reason is StopReason.TOOL_USE
        assert [(c.id, c.name, json.loads(c.arguments)) for c in r.tool_calls()] == [
            (BEDROCK_TOOL_IDS[0], "get_weather", {"city": "Paris"}),
            (BEDROCK_TOOL_IDS[1], "get_time", {})]
        follow = ChatRequest(model="m", tools=tools, messages=[
            *req.messages, Message(role="assistant", content=r.content),
            Message(role="tool", content=[
                ToolResult(call_id=BEDROCK_TOOL_IDS[0], content=[Text(text="18C, sunny")]),
                ToolResult(call_id=BEDROCK_TOOL_IDS[1], content=[Text(text="12:00")])])])
        for r2 in await both(provider, follow):
            assert r2.text() == FOLLOWUP and r2.stop_reason is StopReason.END_TURN
    sent = fake.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[2]["content"][0]["toolResult"] == {
        "toolUseId": BEDROCK_TOOL_IDS[0], "content": [{"text": "18C, sunny"}],
        "status": "success"}


async def test_thinking_and_its_signature_round_trip(provider: Bedrock,
                                                     fake: FakeBedrock) -> None:
    req = ask("scenario:thinking hi", reasoning=Reasoning(effort="low"), max_tokens=4096)
    for r in await both(provider, req):
        assert r.content[0] == Thinking(text=THINKING, signature=BEDROCK_SIGNATURE,
                                        origin="bedrock")
        assert r.text() == THINK_ANSWER
    assert fake.requests[-1].body["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 2048}}
    follow = ChatRequest(model="m", max_tokens=4096, reasoning=Reasoning(effort="low"),
                         messages=[*req.messages,
                                   Message(role="assistant", content=r.content),
                                   Message(role="user", content=[Text(text="and?")])])
    assert (await provider.complete(follow)).text() == THINK_ANSWER
    assert fake.requests[-1].body["messages"][1]["content"][0] == {"reasoningContent": {
        "reasoningText": {"text": THINKING, "signature": BEDROCK_SIGNATURE}}}


async def test_truncated(provider: Bedrock) -> None:
    for r in await both(provider, ask("scenario:truncated")):
        assert r.text() == TRUNCATED and r.stop_reason is StopReason.MAX_TOKENS


# --- auth ---------------------------------------------------------------------------------


async def test_temporary_credentials_send_their_session_token(fake: FakeBedrock) -> None:
    p = from_spec(spec(fake, aws_access_key_id=TEMP_KEY_ID, aws_secret_access_key=TEMP_SECRET,
                       aws_session_token=TEMP_TOKEN))
    try:
        assert (await p.complete(ask("hi"))).text() == TEXT
    finally:
        await p.aclose()
    assert fake.requests[-1].headers["x-amz-security-token"] == TEMP_TOKEN


async def test_debug_logging_never_shows_a_secret(fake: FakeBedrock,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: everything that propagates
    p = from_spec(spec(fake, aws_access_key_id=TEMP_KEY_ID, aws_secret_access_key=TEMP_SECRET,
                       aws_session_token=TEMP_TOKEN))
    try:
        assert (await p.complete(ask("hi"))).text() == TEXT
    finally:
        await p.aclose()
    assert TEMP_TOKEN not in caplog.text and TEMP_SECRET not in caplog.text


async def test_bedrock_api_key_is_a_bearer_token(fake: FakeBedrock) -> None:
    p = from_spec(spec(fake, api_key=BEDROCK_API_KEY))
    try:
        r = [e async for e in p.stream(ask("hi"))]
        assert "".join(getattr(e, "text", "") for e in r) == TEXT
    finally:
        await p.aclose()
    assert fake.requests[-1].headers["authorization"] == f"Bearer {BEDROCK_API_KEY}"
    assert "x-amz-date" not in fake.requests[-1].headers


@pytest.mark.parametrize("options", [
    {"aws_access_key_id": AWS_KEY_ID, "aws_secret_access_key": "wrong-secret"},
    {"aws_access_key_id": "AKIAUNKNOWN000000000", "aws_secret_access_key": AWS_SECRET},
    {"aws_access_key_id": TEMP_KEY_ID, "aws_secret_access_key": TEMP_SECRET},  # no token
])
async def test_bad_credentials_are_the_gateways_problem(fake: FakeBedrock,
                                                        options: dict[str, str]) -> None:
    p = from_spec(spec(fake, **options))
    try:
        with pytest.raises(Exception) as e:
            await p.complete(ask("hi"))
    finally:
        await p.aclose()
    assert e.value.kind is ErrorKind.UPSTREAM and e.value.status == 502  # type: ignore[attr-defined]
    assert "credentials" in str(e.value) and "wrong-secret" not in str(e.value)


@pytest.fixture
def aws_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An AWS environment with nothing in it: no variables, empty shared files, no IMDS."""
    import os
    for var in list(os.environ):
        if var.startswith("AWS_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


async def test_the_standard_credential_chain_environment(fake: FakeBedrock, aws_env: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEMP_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEMP_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TEMP_TOKEN)
    monkeypatch.setenv("AWS_REGION", REGION)
    p = from_spec(ProviderSpec(name="br", provider="bedrock", model=MODEL, base_url=fake.url))
    try:
        assert p.region == REGION
        assert (await p.complete(ask("hi"))).text() == TEXT
    finally:
        await p.aclose()
    assert fake.requests[-1].headers["authorization"].split("/")[0].endswith(TEMP_KEY_ID)


async def test_a_named_profile_of_the_shared_files(fake: FakeBedrock, aws_env: Path) -> None:
    (aws_env / "credentials").write_text(
        f"[team]\naws_access_key_id = {AWS_KEY_ID}\naws_secret_access_key = {AWS_SECRET}\n")
    (aws_env / "config").write_text(f"[profile team]\nregion = {REGION}\n")
    p = from_spec(ProviderSpec(name="br", provider="bedrock", model=MODEL, base_url=fake.url,
                               options={"profile": "team"}))
    try:
        assert p.region == REGION  # from the profile's config
        assert (await p.complete(ask("hi"))).text() == TEXT
    finally:
        await p.aclose()


async def test_no_credentials_anywhere(fake: FakeBedrock, aws_env: Path) -> None:
    p = from_spec(ProviderSpec(name="br", provider="bedrock", model=MODEL, base_url=fake.url,
                               options={"region": REGION}))
    try:
        with pytest.raises(Exception, match="no AWS credentials found") as e:
            await p.complete(ask("hi"))
        assert e.value.kind is ErrorKind.UPSTREAM  # type: ignore[attr-defined]
        p2 = from_spec(ProviderSpec(name="br", provider="bedrock", model=MODEL,
                                    base_url=fake.url,
                                    options={"region": REGION, "profile": "missing"}))
        with pytest.raises(Exception, match="cannot load AWS credentials"):
            await p2.complete(ask("hi"))
        await p2.aclose()
    finally:
        await p.aclose()


def test_options_are_validated_and_secrets_never_printed(fake: FakeBedrock,
                                                         aws_env: Path) -> None:
    with pytest.raises(OptionsError, match="regoin"):
        from_spec(spec(fake, regoin="x"))
    with pytest.raises(OptionsError, match="go together"):
        from_spec(spec(fake, aws_access_key_id=AWS_KEY_ID))
    with pytest.raises(OptionsError, match="aws_session_token needs"):
        from_spec(spec(fake, aws_session_token=TEMP_TOKEN))
    with pytest.raises(OptionsError, match="region"):
        from_spec(ProviderSpec(name="br", provider="bedrock", model=MODEL))
    p = from_spec(spec(fake))
    assert AWS_SECRET not in repr(p) and AWS_KEY_ID not in repr(p)
    assert p.http.base_url == fake.url
    default = from_spec(ProviderSpec(name="br", provider="bedrock", model=MODEL,
                                     options={"region": "us-west-2"}))
    assert default.http.base_url == "https://bedrock-runtime.us-west-2.amazonaws.com"


# --- failures -------------------------------------------------------------------------------

BEDROCK_FAILURES = {**HTTP_FAILURES, "error400": ErrorKind.CONTEXT_LENGTH,
                    "error408": ErrorKind.TIMEOUT, "error424": ErrorKind.UPSTREAM,
                    "error503": ErrorKind.OVERLOADED}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("scenario", "kind"), sorted(BEDROCK_FAILURES.items()))
async def test_http_failures(provider: Bedrock, scenario: str, kind: ErrorKind,
                             stream: bool) -> None:
    out = await outcome(provider, scenario, stream)
    assert out.error is not None and out.error.kind is kind, (scenario, out.error)
    assert not out.in_band and out.text == ""


@pytest.mark.parametrize(("scenario", "kind"), [
    ("midstream_error", ErrorKind.UPSTREAM), ("stream_throttled", ErrorKind.RATE_LIMITED),
    ("cut", ErrorKind.TRANSPORT), ("malformed", ErrorKind.UPSTREAM),
    ("badprelude", ErrorKind.UPSTREAM),
])
async def test_failures_after_the_stream_started(provider: Bedrock, scenario: str,
                                                 kind: ErrorKind) -> None:
    out = await outcome(provider, scenario, True)
    assert out.in_band and out.error is not None and out.error.kind is kind, out.error
    assert out.text == PARTIAL  # what came before the failure reached the caller


async def test_an_exception_before_any_content_is_raised_like_an_http_error(
        provider: Bedrock) -> None:
    out = await outcome(provider, "throttled_start", True)
    assert out.error is not None and out.error.kind is ErrorKind.RATE_LIMITED
    assert not out.in_band


@pytest.mark.parametrize(("scenario", "kind"), [("cut", ErrorKind.TRANSPORT),
                                                ("malformed", ErrorKind.UPSTREAM)])
async def test_broken_non_stream_bodies(provider: Bedrock, scenario: str,
                                        kind: ErrorKind) -> None:
    out = await outcome(provider, scenario, False)
    assert out.error is not None and out.error.kind is kind


# --- images ---------------------------------------------------------------------------------


async def test_images_inline_and_by_url(provider: Bedrock, fake: FakeBedrock) -> None:
    want = image_answer([image_note(data=IMAGE_PNG)] * 2)
    req = ask("scenario:image what is it?")
    req.messages[0].content += [Image(mime="image/png", data=IMAGE_PNG_B64),
                                Image(url=f"{fake.url}/images/red.png")]
    for r in await both(provider, req):
        assert r.text() == want
    blocks = fake.requests[-1].body["messages"][0]["content"]
    assert blocks[1] == blocks[2] == {"image": {"format": "png",
                                                "source": {"bytes": IMAGE_PNG_B64}}}
    assert [r.path for r in fake.requests[-4:]].count("/images/red.png") == 2


async def test_an_image_url_to_a_private_host_is_refused(fake: FakeBedrock) -> None:
    p = from_spec(spec(fake, fetch_policy=None))  # defaults: no allowlist
    before = len(fake.requests)
    req = ask("scenario:image")
    req.messages[0].content.append(Image(url=f"{fake.url}/images/red.png"))
    try:
        with pytest.raises(InvalidRequest, match="loopback"):
            await p.complete(req)
        with pytest.raises(InvalidRequest, match="private"):
            req.messages[0].content[-1] = Image(url="http://10.0.0.8/x.png")
            await acollect(p.stream(req), "id", "m")
    finally:
        await p.aclose()
    assert len(fake.requests) == before  # neither the image nor Bedrock was asked


async def test_a_conversation_bedrock_cannot_take_is_a_clear_400(provider: Bedrock) -> None:
    req = ChatRequest(model="m", messages=[
        Message(role="assistant", content=[ToolCall(id="x", name="f")])])
    with pytest.raises(InvalidRequest, match="start with a user"):
        await provider.complete(req)

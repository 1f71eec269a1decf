"""Azure OpenAI against a fake Azure resource on loopback: the four routes, both
credentials (and never both), a caller-owned token provider asked before every request,
Azure's additions to the OpenAI bytes, and every failure."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import pytest

from dragoman.config import ConfigError, build_gateway, parse_config
from dragoman.core import (
    ContextLengthExceeded,
    ErrorKind,
    Image,
    InvalidRequest,
    Message,
    NotFound,
    StopReason,
    Text,
    UpstreamError,
    acollect,
)
from dragoman.providers.azure import CHAT_API_VERSION, RESPONSES_API_VERSION, AzureOpenAI
from tests.fakes.azure import AZURE_AD_TOKENS, AZURE_KEY, DEPLOYMENT, FakeAzure
from tests.fakes.upstream import (
    CHAT_CALL_IDS,
    IMAGE_PNG,
    IMAGE_PNG_B64,
    PARTIAL,
    TEXT,
    image_answer,
    image_note,
)

from .failures import HTTP_FAILURES, RETRY_AFTER_SECONDS, outcome, request

APIS = ("chat", "responses", "v1", "v1_responses")
PATHS = {"chat": f"/openai/deployments/{DEPLOYMENT}/chat/completions",
         "responses": "/openai/responses", "v1": "/openai/v1/chat/completions",
         "v1_responses": "/openai/v1/responses"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAzure]:
    with FakeAzure() as f:
        yield f


@pytest.fixture
async def azure(fake: FakeAzure) -> AsyncIterator[AzureOpenAI]:
    p = AzureOpenAI(model=DEPLOYMENT, base_url=fake.url, api_key=AZURE_KEY)
    yield p
    await p.aclose()


def _last(fake: FakeAzure):  # type: ignore[no-untyped-def]
    return fake.requests[-1]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("api", APIS)
async def test_routes_and_key(api: str, stream: bool, fake: FakeAzure) -> None:
    # The model name is not the deployment: the deployment option decides.
    p = AzureOpenAI(model="gpt-4o", deployment=DEPLOYMENT, base_url=fake.url + "/openai",
                    api_key=AZURE_KEY, api=api)  # type: ignore[arg-type]
    try:
        req = request("text", stream)
        resp = await (acollect(p.stream(req), "x", "m") if stream else p.complete(req))
    finally:
        await p.aclose()
    assert resp.text() == TEXT
    rec = _last(fake)
    assert rec.path == PATHS[api]
    version = {"chat": CHAT_API_VERSION, "responses": RESPONSES_API_VERSION}.get(api)
    assert rec.query == (f"api-version={version}" if version else "")
    assert rec.headers["api-key"] == AZURE_KEY
    assert "authorization" not in rec.headers
    assert rec.body["model"] == DEPLOYMENT
    assert rec.body["stream"] is stream


async def test_api_version_option(fake: FakeAzure) -> None:
    p = AzureOpenAI(model=DEPLOYMENT, base_url=fake.url, api_key=AZURE_KEY,
                    api_version="2025-01-01-preview")
    try:
        await p.complete(request("text", False))
    finally:
        await p.aclose()
    assert _last(fake).query == "api-version=2025-01-01-preview"


async def test_unknown_deployment_is_not_found(fake: FakeAzure) -> None:
    p = AzureOpenAI(model="no-such-deployment", base_url=fake.url, api_key=AZURE_KEY)
    try:
        with pytest.raises(NotFound):
            await p.complete(request("text", False))
    finally:
        await p.aclose()


async def test_static_entra_token(fake: FakeAzure) -> None:
    p = AzureOpenAI(model=DEPLOYMENT, base_url=fake.url, azure_ad_token=AZURE_AD_TOKENS[0])
    try:
        assert (await p.complete(request("text", False))).text() == TEXT
    finally:
        await p.aclose()
    rec = _last(fake)
    assert rec.headers["authorization"] == f"Bearer {AZURE_AD_TOKENS[0]}"
    assert "api-key" not in rec.headers


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_token_provider_asked_before_every_request(kind: str, fake: FakeAzure) -> None:
    asked: list[str] = []

    def next_token() -> str:
        # a caller rotating its token: the second request must carry the new one
        token = AZURE_AD_TOKENS[min(len(asked), 1)]
        asked.append(token)
        return token

    async def next_token_async() -> str:
        await asyncio.sleep(0)
        return next_token()

    fake.tokens = set(AZURE_AD_TOKENS)
    p = AzureOpenAI(model=DEPLOYMENT, base_url=fake.url,
                    azure_ad_token_provider=next_token if kind == "sync" else next_token_async)
    try:
        await p.complete(request("text", False))
        first = _last(fake)
        events = [ev async for ev in p.stream(request("text", True))]
        second = _last(fake)
    finally:
        await p.aclose()
        fake.tokens = {AZURE_AD_TOKENS[0]}
    assert asked == list(AZURE_AD_TOKENS)
    assert first.headers["authorization"] == f"Bearer {AZURE_AD_TOKENS[0]}"
    assert second.headers["authorization"] == f"Bearer {AZURE_AD_TOKENS[1]}"
    assert "api-key" not in second.headers
    assert events and AZURE_AD_TOKENS[1] not in repr(p)


def test_never_both_credentials() -> None:
    with pytest.raises(ValueError, match="never both"):
        AzureOpenAI(model="d", base_url="https://x.openai.azure.com", api_key="k",
                    azure_ad_token="t")
    with pytest.raises(ValueError, match="never both"):
        AzureOpenAI(model="d", base_url="https://x.openai.azure.com", api_key="k",
                    azure_ad_token_provider=lambda: "t")
    with pytest.raises(ConfigError, match="never both"):
        build_gateway(parse_config({"models": [{
            "name": "az", "provider": "azure_openai", "model": "d", "api_key": "k",
            "azure_ad_token": "t", "base_url": "https://x.openai.azure.com"}]}))


def test_config_options_validated() -> None:
    with pytest.raises(ConfigError, match="deploymnet"):
        build_gateway(parse_config({"models": [{
            "name": "az", "provider": "azure_openai", "model": "d", "api_key": "k",
            "deploymnet": "x", "base_url": "https://x.openai.azure.com"}]}))
    with pytest.raises(ConfigError, match="api"):
        build_gateway(parse_config({"models": [{
            "name": "az", "provider": "azure_openai", "model": "d", "api_key": "k",
            "api": "completions", "base_url": "https://x.openai.azure.com"}]}))
    with pytest.raises(ConfigError, match="base_url"):
        build_gateway(parse_config({"models": [{
            "name": "az", "provider": "azure_openai", "model": "d", "api_key": "k"}]}))


def test_repr_hides_credentials() -> None:
    p = AzureOpenAI(model="d", base_url="https://x.openai.azure.com", api_key=AZURE_KEY)
    q = AzureOpenAI(model="d", base_url="https://x.openai.azure.com",
                    azure_ad_token=AZURE_AD_TOKENS[0])
    assert AZURE_KEY not in repr(p) and AZURE_AD_TOKENS[0] not in repr(q)


# --- Azure's additions --------------------------------------------------------------------


async def test_stream_starting_with_empty_choices(azure: AzureOpenAI, fake: FakeAzure) -> None:
    resp = await acollect(azure.stream(request("tools", True)), "x", "m")
    raw = fake.requests[-1]
    assert raw.stream
    assert [c.id for c in resp.tool_calls()] == list(CHAT_CALL_IDS)
    assert json.loads(resp.tool_calls()[0].arguments) == {"city": "Paris"}
    assert resp.stop_reason is StopReason.TOOL_USE
    assert resp.usage.input_tokens == 82


@pytest.mark.parametrize("stream", [False, True])
async def test_content_filter_stop(stream: bool, azure: AzureOpenAI) -> None:
    req = request("filtered", stream)
    resp = await (acollect(azure.stream(req), "x", "m") if stream else azure.complete(req))
    assert resp.stop_reason is StopReason.CONTENT_FILTER
    assert resp.text() == TEXT


@pytest.mark.parametrize("stream", [False, True])
async def test_prompt_blocked_by_content_filter(stream: bool, azure: AzureOpenAI) -> None:
    got = await outcome(azure, "filtered400", stream)
    assert isinstance(got.error, InvalidRequest) and not got.in_band
    assert got.error.code == "content_filter"
    assert "content management policy" in got.error.message


@pytest.mark.parametrize("api", ["chat", "v1_responses"])
async def test_images_inline_and_by_url(api: str, fake: FakeAzure) -> None:
    url = "https://images.example.com/cat.png"
    req = request("image", False)
    req.messages[0].content += [Image(mime="image/png", data=IMAGE_PNG_B64), Image(url=url)]
    p = AzureOpenAI(model=DEPLOYMENT, base_url=fake.url, api_key=AZURE_KEY,
                    api=api)  # type: ignore[arg-type]
    try:
        resp = await p.complete(req)
    finally:
        await p.aclose()
    # Azure takes both forms itself: the fake saw the exact bytes and the URL.
    assert resp.text() == image_answer([image_note(data=IMAGE_PNG), image_note(url=url)])


# --- failures -----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("scenario", sorted(HTTP_FAILURES))
async def test_http_failures(scenario: str, stream: bool, azure: AzureOpenAI) -> None:
    got = await outcome(azure, scenario, stream)
    assert got.error is not None and not got.in_band
    assert got.error.kind == HTTP_FAILURES[scenario]
    if scenario == "error429":
        assert got.error.retry_after == RETRY_AFTER_SECONDS


@pytest.mark.parametrize("stream", [False, True])
async def test_context_length_400(stream: bool, azure: AzureOpenAI) -> None:
    got = await outcome(azure, "error400", stream)
    assert isinstance(got.error, ContextLengthExceeded)


@pytest.mark.parametrize("stream", [False, True])
async def test_wrong_key_is_the_gateways_problem(stream: bool, fake: FakeAzure) -> None:
    p = AzureOpenAI(model=DEPLOYMENT, base_url=fake.url, api_key="wrong-key")
    try:
        got = await outcome(p, "text", stream)
    finally:
        await p.aclose()
    assert isinstance(got.error, UpstreamError) and got.error.status == 502
    assert "wrong-key" not in got.error.message


@pytest.mark.parametrize("stream", [False, True])
async def test_cut_and_malformed(stream: bool, azure: AzureOpenAI) -> None:
    cut = await outcome(azure, "cut", stream)
    assert cut.error is not None and cut.error.kind in (ErrorKind.TRANSPORT,
                                                        ErrorKind.UPSTREAM)
    bad = await outcome(azure, "malformed", stream)
    assert bad.error is not None and bad.error.kind == ErrorKind.UPSTREAM
    if stream:
        assert cut.in_band and bad.in_band
        assert cut.text == PARTIAL and bad.text == PARTIAL


async def test_midstream_error(azure: AzureOpenAI) -> None:
    got = await outcome(azure, "midstream_error", True)
    assert got.in_band and got.text == PARTIAL
    assert got.error is not None and got.error.kind == ErrorKind.UPSTREAM


async def test_history_with_foreign_content_reaches_azure(azure: AzureOpenAI,
                                                          fake: FakeAzure) -> None:
    req = request("text", False)
    req.messages.insert(0, Message(role="developer", content=[Text(text="Be terse.")]))
    await azure.complete(req)
    assert fake.requests[-1].body["messages"][0] == {"role": "developer",
                                                      "content": "Be terse."}

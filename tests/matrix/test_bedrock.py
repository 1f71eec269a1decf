"""The matrix for ``bedrock``: every ingress dialect's official SDK against a real
``dragoman serve`` whose upstream is ``FakeBedrock`` (Converse / ConverseStream, SigV4
verified by the fake), streaming and not, with a tool round trip — for the three ways of
authenticating: explicit keys (from the environment through ``${VAR}``), the standard AWS
credential chain (temporary credentials in the process environment), and a Bedrock API
key. Plus thinking, images (inline and by URL through the SSRF-safe fetcher), failures
and secrets kept out of the logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.cross_dialect.clients import SYSTEM, TOOL_RESULTS, call, prompt
from tests.fakes.bedrock import (
    AWS_KEY_ID,
    AWS_SECRET,
    BEDROCK_API_KEY,
    BEDROCK_TOOL_IDS,
    REGION,
    TEMP_KEY_ID,
    TEMP_SECRET,
    TEMP_TOKEN,
    FakeBedrock,
)
from tests.fakes.upstream import (
    IMAGE_PNG,
    IMAGE_PNG_B64,
    PARTIAL,
    PREAMBLE,
    THINK_ANSWER,
    THINKING,
    image_answer,
    image_note,
)

from .common import INGRESS, MODES, Clients, gateway, text_cell, tools_cell

MODEL_ID = "eu.anthropic.claude-sonnet-4-20250514-v1:0"
PATH = "/model/eu.anthropic.claude-sonnet-4-20250514-v1%3A0/converse"
MODELS = ("br-keys", "br-chain", "br-apikey")
#: how each model authenticates: (Authorization prefix, session token sent)
AUTH = {"br-keys": (f"AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/", None),
        "br-chain": (f"AWS4-HMAC-SHA256 Credential={TEMP_KEY_ID}/", TEMP_TOKEN),
        "br-apikey": (f"Bearer {BEDROCK_API_KEY}", None)}
SECRETS = (AWS_SECRET, TEMP_SECRET, TEMP_TOKEN, BEDROCK_API_KEY)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as f:
        yield f


@pytest.fixture(scope="module")
def gw(fake: FakeBedrock, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    tmp = tmp_path_factory.mktemp("bedrock-gw")
    common: dict[str, Any] = {"provider": "bedrock", "model": MODEL_ID, "base_url": fake.url,
                              "region": REGION, "capabilities": {"thinking": True}}
    config = {
        "fetch": {"allow_hosts": ["127.0.0.1"], "max_bytes": 1_000_000, "timeout": 5},
        "models": [
            {"name": "br-keys", **common, "aws_access_key_id": "${BR_KEY_ID}",
             "aws_secret_access_key": "${BR_SECRET}"},
            {"name": "br-chain", **common},
            {"name": "br-apikey", **common, "api_key": "${BR_API_KEY}"},
        ]}
    env = {"BR_KEY_ID": AWS_KEY_ID, "BR_SECRET": AWS_SECRET, "BR_API_KEY": BEDROCK_API_KEY,
           # the standard chain finds temporary credentials in the environment; nothing
           # else (no shared files, no instance metadata) may be consulted
           "AWS_ACCESS_KEY_ID": TEMP_KEY_ID, "AWS_SECRET_ACCESS_KEY": TEMP_SECRET,
           "AWS_SESSION_TOKEN": TEMP_TOKEN, "AWS_CONFIG_FILE": str(tmp / "no-config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-credentials"),
           "AWS_EC2_METADATA_DISABLED": "true"}
    with gateway(config, tmp, env=env) as c:
        yield c


def check_auth(rec: Any, model: str) -> None:
    prefix, token = AUTH[model]
    assert rec.headers["authorization"].startswith(prefix)
    assert rec.headers.get("x-amz-security-token") == token
    assert "sk-client" not in json.dumps(rec.headers)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_text(ingress: str, model: str, mode: str, gw: Clients, fake: FakeBedrock) -> None:
    t, rec = text_cell(gw, fake, ingress, model, mode)
    assert rec.path == PATH + ("-stream" if mode == "stream" else "")
    check_auth(rec, model)
    assert rec.body["system"] == [{"text": SYSTEM}]
    assert "model" not in rec.body and "stream" not in rec.body
    # Converse usage: 21 input + 100 cache reads + 5 cache writes, 9 output; an Anthropic
    # client sees input_tokens without the cache (21), the others the whole prompt (126)
    assert (t.usage["output"], t.usage["cached"]) == (9, 100), t.usage
    if ingress == "messages":
        assert t.usage["raw_input"] == 21
    else:
        assert t.usage["input"] == 126


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_tool_round_trip(ingress: str, model: str, mode: str, gw: Clients,
                         fake: FakeBedrock) -> None:
    t1, _, recs, user = tools_cell(gw, fake, ingress, model, mode, BEDROCK_TOOL_IDS)
    assert {k: t1.usage.get(k) for k in ("input", "output")} == {"input": 82, "output": 31}
    first, second = recs
    assert [t["toolSpec"]["name"] for t in first.body["toolConfig"]["tools"]] == \
        ["get_weather", "get_time"]
    assert second.body["system"] == [{"text": SYSTEM}]
    msgs = second.body["messages"]
    assert msgs == [
        {"role": "user", "content": [{"text": user}]},
        {"role": "assistant", "content": [
            {"text": PREAMBLE},
            {"toolUse": {"toolUseId": BEDROCK_TOOL_IDS[0], "name": "get_weather",
                         "input": {"city": "Paris"}}},
            {"toolUse": {"toolUseId": BEDROCK_TOOL_IDS[1], "name": "get_time", "input": {}}}]},
        {"role": "user", "content": [
            {"toolResult": {"toolUseId": BEDROCK_TOOL_IDS[0],
                            "content": [{"text": TOOL_RESULTS[0]}], "status": "success"}},
            {"toolResult": {"toolUseId": BEDROCK_TOOL_IDS[1],
                            "content": [{"text": TOOL_RESULTS[1]}], "status": "success"}}]},
    ]
    check_auth(second, model)


def reasoning_kwargs(ingress: str) -> dict[str, Any]:
    if ingress == "chat":
        return {"reasoning_effort": "low", "max_completion_tokens": 4096}
    if ingress == "responses":
        return {"reasoning": {"effort": "low", "summary": "auto"}, "max_output_tokens": 4096}
    return {"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 4096}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ingress", INGRESS)
def test_thinking(ingress: str, mode: str, gw: Clients, fake: FakeBedrock) -> None:
    user, nonce = prompt("thinking")
    t = call(gw.oai, gw.ant, ingress, "br-keys", mode, user, **reasoning_kwargs(ingress))
    assert t.text == THINK_ANSWER
    assert t.thinking == THINKING  # (Chat: the non-standard reasoning_content)
    body = fake.one(nonce).body
    assert body["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert body["inferenceConfig"]["maxTokens"] == 4096


def _chat_image(gw: Clients, user: str, url: str) -> str:
    r = gw.oai.chat.completions.create(model="br-keys", messages=[{"role": "user", "content": [
        {"type": "text", "text": user}, {"type": "image_url", "image_url": {"url": url}}]}])
    return r.choices[0].message.content or ""


def test_images_inline_and_by_url(gw: Clients, fake: FakeBedrock) -> None:
    want = image_answer([image_note(data=IMAGE_PNG)])
    block = {"image": {"format": "png", "source": {"bytes": IMAGE_PNG_B64}}}
    for url in (f"data:image/png;base64,{IMAGE_PNG_B64}", f"{fake.url}/images/red.png"):
        user, nonce = prompt("image")
        assert _chat_image(gw, user, url) == want
        assert fake.one(nonce).body["messages"][0]["content"][1] == block
    user, nonce = prompt("image")
    m = gw.ant.messages.create(model="br-keys", max_tokens=100, messages=[{
        "role": "user", "content": [
            {"type": "text", "text": user},
            {"type": "image", "source": {"type": "url", "url": f"{fake.url}/images/red.png"}}]}])
    assert m.content[0].text == want  # type: ignore[union-attr]
    user, nonce = prompt("image")
    r = gw.oai.responses.create(model="br-keys", input=[{"role": "user", "content": [
        {"type": "input_text", "text": user},
        {"type": "input_image", "image_url": f"{fake.url}/images/red.png", "detail": "auto"}]}])
    assert r.output_text == want


def test_an_image_url_outside_the_allowlist_is_a_400(gw: Clients, fake: FakeBedrock) -> None:
    user, nonce = prompt("image")
    port = fake.url.rsplit(":", 1)[1]
    with pytest.raises(openai.BadRequestError) as ei:
        _chat_image(gw, user, f"http://localhost:{port}/images/red.png")
    assert "loopback" in ei.value.message and "127.0.0.1" not in ei.value.message
    assert fake.find(nonce) == []


@pytest.mark.parametrize(("scenario", "status", "oai_error", "ant_error"), [
    ("error400", 400, "BadRequestError", "BadRequestError"),
    ("error404", 404, "NotFoundError", "NotFoundError"),
    ("error429", 429, "RateLimitError", "RateLimitError"),
    ("error403", 502, "InternalServerError", "InternalServerError"),
    ("error503", 503, "InternalServerError", "InternalServerError"),
])
@pytest.mark.parametrize("ingress", INGRESS)
def test_http_failures_reach_every_sdk(ingress: str, scenario: str, status: int,
                                       oai_error: str, ant_error: str, gw: Clients) -> None:
    user, _ = prompt(scenario)
    sdk, name = (anthropic, ant_error) if ingress == "messages" else (openai, oai_error)
    with pytest.raises(getattr(sdk, name)) as ei:
        call(gw.oai, gw.ant, ingress, "br-keys", "json", user,
             **({"max_tokens": 50} if ingress == "messages" else {}))
    want = 529 if (ingress == "messages" and status == 503) else status
    assert ei.value.status_code == want


@pytest.mark.parametrize("ingress", INGRESS)
def test_a_throttle_at_the_start_of_a_stream_is_a_429(ingress: str, gw: Clients) -> None:
    user, _ = prompt("throttled_start")
    sdk = anthropic if ingress == "messages" else openai
    with pytest.raises(sdk.RateLimitError):
        call(gw.oai, gw.ant, ingress, "br-keys", "stream", user,
             **({"max_tokens": 50} if ingress == "messages" else {}))


@pytest.mark.parametrize("scenario", ["midstream_error", "cut", "malformed"])
def test_failures_mid_stream(scenario: str, gw: Clients) -> None:
    user, _ = prompt(scenario)
    got = ""
    with pytest.raises(openai.APIError):
        for chunk in gw.oai.chat.completions.create(
                model="br-keys", stream=True, messages=[{"role": "user", "content": user}]):
            for ch in chunk.choices:
                got += ch.delta.content or ""
                assert ch.finish_reason is None, "a failed stream must not look finished"
    assert got == PARTIAL
    got = ""
    with pytest.raises(anthropic.APIStatusError):
        for ev in gw.ant.messages.create(model="br-keys", max_tokens=50, stream=True,
                                         messages=[{"role": "user", "content": user}]):
            if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
                got += ev.delta.text
    assert got == PARTIAL


def test_no_secret_reaches_the_logs(gw: Clients) -> None:
    logs = gw.logs()
    assert logs  # the gateway did write something
    for secret in SECRETS:
        assert secret not in logs

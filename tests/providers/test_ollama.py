"""Ollama against a fake server on loopback: ``/api/chat`` with NDJSON streams, the body
(explicit ``stream``, options, format, think), tool calls without ids and their results
mapped back, images inline and fetched by URL (SSRF-safe), and every failure."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

from dragoman.config import ConfigError, build_gateway, parse_config
from dragoman.core import (
    File,
    Image,
    InvalidRequest,
    Message,
    NotFound,
    Reasoning,
    ResponseFormat,
    StopReason,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    acollect,
)
from dragoman.net.fetch import FetchPolicy
from dragoman.providers.ollama import Ollama
from dragoman.providers.registry import ProviderSpec, build
from tests.fakes.ollama import (
    EVAL,
    OLLAMA_MODEL,
    PROMPT_EVAL,
    TOOLS_EVAL,
    TOOLS_PROMPT_EVAL,
    FakeOllama,
)
from tests.fakes.upstream import (
    FOLLOWUP,
    IMAGE_PNG,
    IMAGE_PNG_B64,
    PARTIAL,
    PATCH,
    PATCH_TOOL,
    PREAMBLE,
    TEXT,
    THINK_ANSWER,
    THINKING,
    TRUNCATED,
    image_answer,
    image_note,
)

from .failures import (
    HTTP_FAILURES,
    RETRY_AFTER_SECONDS,
    assert_broken_streams,
    outcome,
    request,
)

TOOLS = [Tool(name="get_weather", description="Weather now",
              parameters={"type": "object", "properties": {"city": {"type": "string"}}}),
         Tool(name="get_time", parameters={"type": "object", "properties": {}})]
LOOPBACK = FetchPolicy(max_bytes=1 << 20, timeout=5.0, allowed_content_types=("image/",),
                       allow_hosts=frozenset({"127.0.0.1"}))


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOllama]:
    with FakeOllama() as f:
        yield f


@pytest.fixture
async def ollama(fake: FakeOllama) -> AsyncIterator[Ollama]:
    p = Ollama(model=OLLAMA_MODEL, base_url=fake.url, image_fetch=LOOPBACK)
    yield p
    await p.aclose()


async def run(p: Ollama, req, stream: bool):  # type: ignore[no-untyped-def]
    req.stream = stream
    return await (acollect(p.stream(req), "x", "m") if stream else p.complete(req))


@pytest.mark.parametrize("stream", [False, True])
async def test_text_and_body(stream: bool, ollama: Ollama, fake: FakeOllama) -> None:
    req = request("text", stream, temperature=0.2, top_p=0.9, top_k=40, max_tokens=64,
                  stop=["END"], seed=3, system=[Text(text="Be terse.")])
    resp = await run(ollama, req, stream)
    assert resp.text() == TEXT and resp.stop_reason is StopReason.END_TURN
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (PROMPT_EVAL, EVAL)
    rec = fake.requests[-1]
    assert rec.path == "/api/chat"
    b = rec.body
    assert b["stream"] is stream  # always explicit: Ollama streams by default
    assert b["model"] == OLLAMA_MODEL
    assert b["messages"][0] == {"role": "system", "content": "Be terse."}
    assert b["options"] == {"temperature": 0.2, "top_p": 0.9, "top_k": 40, "num_predict": 64,
                            "stop": ["END"], "seed": 3}
    assert "authorization" not in rec.headers


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_round_trip(stream: bool, ollama: Ollama, fake: FakeOllama) -> None:
    req = request("tools", stream, tools=TOOLS)
    first = await run(ollama, req, stream)
    calls = first.tool_calls()
    assert first.text() == PREAMBLE
    # done_reason "stop" after tool calls is a tool_use turn
    assert first.stop_reason is StopReason.TOOL_USE
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}), ("get_time", {})]
    assert len({c.id for c in calls}) == 2 and all(c.id for c in calls)
    assert (first.usage.input_tokens, first.usage.output_tokens) == (TOOLS_PROMPT_EVAL,
                                                                     TOOLS_EVAL)
    tools = fake.requests[-1].body["tools"]
    assert tools[0] == {"type": "function", "function": {
        "name": "get_weather", "description": "Weather now",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}

    req.messages += [Message(role="assistant", content=first.content),
                     Message(role="tool", content=[
                         ToolResult(call_id=calls[0].id, content=[Text(text="18C")]),
                         ToolResult(call_id=calls[1].id, content=[Text(text="12:00")])])]
    second = await run(ollama, req, stream)
    assert second.text() == FOLLOWUP and second.stop_reason is StopReason.END_TURN
    msgs = fake.requests[-1].body["messages"]
    assert msgs[-3] == {"role": "assistant", "content": PREAMBLE, "tool_calls": [
        {"id": calls[0].id, "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"id": calls[1].id, "function": {"name": "get_time", "arguments": {}}}]}
    assert msgs[-2:] == [
        {"role": "tool", "content": "18C", "tool_name": "get_weather",
         "tool_call_id": calls[0].id},
        {"role": "tool", "content": "12:00", "tool_name": "get_time",
         "tool_call_id": calls[1].id}]


async def test_tool_choice_none_sends_no_tools(ollama: Ollama, fake: FakeOllama) -> None:
    await ollama.complete(request("text", False, tools=TOOLS,
                                  tool_choice=ToolChoice(mode="none")))
    assert "tools" not in fake.requests[-1].body
    await ollama.complete(request("text", False, tools=TOOLS,
                                  tool_choice=ToolChoice(allowed=["get_time"])))
    assert [t["function"]["name"] for t in fake.requests[-1].body["tools"]] == ["get_time"]


async def test_custom_tool_emulated(ollama: Ollama, fake: FakeOllama) -> None:
    custom = Tool(name=PATCH_TOOL, kind="custom", description="Apply a patch")
    req = request("text", False, tools=[custom])
    req.messages += [Message(role="assistant", content=[
        ToolCall(id="call_1", name=PATCH_TOOL, arguments=PATCH, kind="custom")]),
        Message(role="tool", content=[ToolResult(call_id="call_1", kind="custom",
                                                 content=[Text(text="Done")])]),
        Message(role="user", content=[Text(text="thanks")])]
    await ollama.complete(req)
    b = fake.requests[-1].body
    assert b["tools"][0]["function"]["parameters"]["properties"] == {"input": {"type": "string"}}
    assert b["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"input": PATCH}


@pytest.mark.parametrize("stream", [False, True])
async def test_thinking(stream: bool, ollama: Ollama, fake: FakeOllama) -> None:
    resp = await run(ollama, request("thinking", stream, reasoning=Reasoning(effort="high")),
                     stream)
    assert resp.text() == THINK_ANSWER
    assert [p.text for p in resp.content if isinstance(p, Thinking)] == [THINKING]
    assert fake.requests[-1].body["think"] is True


async def test_think_values(fake: FakeOllama) -> None:
    leveled = Ollama(model=OLLAMA_MODEL, base_url=fake.url, think_levels=True,
                     keep_alive="10m", options={"num_ctx": 8192, "temperature": 0.9})
    try:
        await leveled.complete(request("text", False, reasoning=Reasoning(effort="xhigh"),
                                       temperature=0.1))
        b = fake.requests[-1].body
        assert b["think"] == "high" and b["keep_alive"] == "10m"
        # the request's own settings win over the configured defaults
        assert b["options"] == {"num_ctx": 8192, "temperature": 0.1}
        await leveled.complete(request("text", False, reasoning=Reasoning(effort="none")))
        assert fake.requests[-1].body["think"] is False
        await leveled.complete(request("text", False))
        assert "think" not in fake.requests[-1].body
    finally:
        await leveled.aclose()


@pytest.mark.parametrize("rf,want", [(ResponseFormat(type="json_object"), "json"),
                                     (ResponseFormat(type="json_schema", name="w",
                                                     schema={"type": "object"}),
                                      {"type": "object"})])
async def test_format(rf: ResponseFormat, want: object, ollama: Ollama,
                      fake: FakeOllama) -> None:
    await ollama.complete(request("text", False, response_format=rf))
    assert fake.requests[-1].body["format"] == want


@pytest.mark.parametrize("stream", [False, True])
async def test_truncated(stream: bool, ollama: Ollama) -> None:
    resp = await run(ollama, request("truncated", stream), stream)
    assert resp.text() == TRUNCATED and resp.stop_reason is StopReason.MAX_TOKENS


# --- images -----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_images_inline_and_fetched(stream: bool, ollama: Ollama,
                                         fake: FakeOllama) -> None:
    req = request("image", stream)
    req.messages[0].content += [Image(mime="image/png", data=IMAGE_PNG_B64),
                                Image(url=fake.url + "/images/red.png")]
    resp = await run(ollama, req, stream)
    # both arrived as raw base64 bytes: the URL one fetched by the gateway
    assert resp.text() == image_answer([image_note(data=IMAGE_PNG)] * 2)
    assert fake.requests[-1].body["messages"][0]["images"] == [IMAGE_PNG_B64] * 2


async def test_image_fetch_is_ssrf_safe(fake: FakeOllama) -> None:
    strict = Ollama(model=OLLAMA_MODEL, base_url=fake.url)  # no allowlist
    n = len(fake.requests)
    try:
        req = request("image", False)
        req.messages[0].content.append(Image(url=fake.url + "/images/red.png"))
        with pytest.raises(InvalidRequest, match="loopback"):
            await strict.complete(req)
    finally:
        await strict.aclose()
    assert len(fake.requests) == n  # refused before anything was sent


async def test_image_fetch_checks_content_type(ollama: Ollama, fake: FakeOllama) -> None:
    req = request("image", False)
    req.messages[0].content.append(Image(url=fake.url + "/images/page.html"))
    with pytest.raises(InvalidRequest):
        await ollama.complete(req)


async def test_image_fetch_refuses_an_error_page(ollama: Ollama, fake: FakeOllama) -> None:
    n = len(fake.requests)
    req = request("image", False)
    req.messages[0].content.append(Image(url=fake.url + "/images/missing.png"))
    with pytest.raises(InvalidRequest, match="HTTP 404"):
        await ollama.complete(req)
    # the image GET reached the fake; no chat request followed it
    assert [r.path for r in fake.requests[n:]] == ["/images/missing.png"]


async def test_documents_refused(ollama: Ollama) -> None:
    req = request("text", False)
    req.messages[0].content.append(File(mime="application/pdf", data="JVBERi0="))
    with pytest.raises(InvalidRequest, match="documents"):
        await ollama.complete(req)


def test_config() -> None:
    p = build(ProviderSpec(name="o", provider="ollama", model=OLLAMA_MODEL, options={
        "keep_alive": "5m", "think_levels": True, "options": {"num_ctx": 4096}}))
    assert isinstance(p, Ollama) and p.http.base_url == "http://127.0.0.1:11434"
    with pytest.raises(ConfigError, match="image_fetch"):  # the gateway-wide fetch: applies
        build_gateway(parse_config({"models": [{
            "name": "o", "provider": "ollama", "model": "m",
            "image_fetch": {"allow_hosts": ["x"]}}]}))
    gw = build_gateway(parse_config({
        "fetch": {"allow_hosts": ["Images.Internal"], "max_bytes": 1000},
        "models": [{"name": "o", "provider": "ollama", "model": "m"}]}))
    policy = gw.models.resolve("o").provider._image_fetch  # type: ignore[attr-defined]
    assert policy.max_bytes == 1000 and "images.internal" in policy.allow_hosts
    assert policy.allowed_content_types == ("image/",)


# --- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("scenario", sorted(HTTP_FAILURES))
async def test_http_failures(scenario: str, stream: bool, ollama: Ollama) -> None:
    got = await outcome(ollama, scenario, stream)
    assert got.error is not None and not got.in_band
    assert got.error.kind == HTTP_FAILURES[scenario]
    if scenario == "error429":
        assert got.error.retry_after == RETRY_AFTER_SECONDS


async def test_bad_request_and_unknown_model(fake: FakeOllama, ollama: Ollama) -> None:
    got = await outcome(ollama, "error400", False)
    assert isinstance(got.error, InvalidRequest) and "num_ctx" in got.error.message
    other = Ollama(model="not-pulled", base_url=fake.url)
    try:
        with pytest.raises(NotFound, match="try pulling it first"):
            await other.complete(request("text", False))
    finally:
        await other.aclose()


@pytest.mark.parametrize("stream", [False, True])
async def test_key_for_ollama_cloud(stream: bool) -> None:
    with FakeOllama(key="ollama-cloud-key") as cloud:
        good = Ollama(model=OLLAMA_MODEL, base_url=cloud.url, api_key="ollama-cloud-key")
        bad = Ollama(model=OLLAMA_MODEL, base_url=cloud.url, api_key="wrong")
        try:
            assert (await outcome(good, "text", stream)).text == TEXT
            got = await outcome(bad, "text", stream)
        finally:
            await good.aclose()
            await bad.aclose()
        assert cloud.requests[0].headers["authorization"] == "Bearer ollama-cloud-key"
    assert got.error is not None and got.error.status == 502


@pytest.mark.parametrize("stream", [False, True])
async def test_cut_malformed_midstream(stream: bool, ollama: Ollama) -> None:
    await assert_broken_streams(ollama, stream, PARTIAL)
    got = await outcome(ollama, "midstream_error", True)
    assert got.error is not None and "unexpected EOF" in got.error.message


def test_ndjson_lines_before_a_bad_one_survive() -> None:
    from dragoman.core import UpstreamError
    from dragoman.net import NdjsonDecoder

    d = NdjsonDecoder()
    assert d.feed(b'{"a":1}\n{"b":2}\n{nope\n{"c":3}\n') == [{"a": 1}, {"b": 2}]
    with pytest.raises(UpstreamError):
        d.feed(b'{"d":4}\n')
    with pytest.raises(UpstreamError):
        d.close()

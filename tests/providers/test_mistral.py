"""Mistral against a fake La Plateforme on loopback (strict schema, 9-character tool call
ids): the envelope rewrite, the deterministic id mapping both ways, reasoning content
lists, custom tools, prefills, images and every failure."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dragoman.core import (
    ContextLengthExceeded,
    Image,
    InvalidRequest,
    Message,
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
from dragoman.providers.mistral import Mistral, mistral_id, parse_error
from tests.fakes.mistral import MISTRAL_CALL_IDS, MISTRAL_KEY, MISTRAL_MODEL, FakeMistral
from tests.fakes.upstream import (
    CHAT_CALL_IDS,
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

ID = re.compile(r"^[a-zA-Z0-9]{9}$")
TOOLS = [Tool(name="get_weather", parameters={"type": "object",
                                              "properties": {"city": {"type": "string"}}}),
         Tool(name="get_time", parameters={"type": "object", "properties": {}})]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeMistral]:
    with FakeMistral() as f:
        yield f


@pytest.fixture
async def mistral(fake: FakeMistral) -> AsyncIterator[Mistral]:
    p = Mistral(model=MISTRAL_MODEL, base_url=fake.url + "/v1", api_key=MISTRAL_KEY)
    yield p
    await p.aclose()


async def run(p: Mistral, req, stream: bool):  # type: ignore[no-untyped-def]
    req.stream = stream
    return await (acollect(p.stream(req), "x", "m") if stream else p.complete(req))


@given(st.text(min_size=1, max_size=80))
@settings(max_examples=60, deadline=None)
def test_mistral_id_is_valid_and_deterministic(call_id: str) -> None:
    got = mistral_id(call_id)
    assert ID.match(got) and mistral_id(call_id) == got
    if ID.match(call_id):
        assert got == call_id


def test_foreign_ids_map_apart() -> None:
    ids = {mistral_id(i) for i in [*CHAT_CALL_IDS, "toolu_01WeatherXyZ", "toolu_02TimeAbC",
                                   "call_Rw8fH3", "fc_68a1w"]}
    assert len(ids) == 6


@pytest.mark.parametrize("stream", [False, True])
async def test_envelope(stream: bool, mistral: Mistral, fake: FakeMistral) -> None:
    req = request("text", stream, seed=7, max_tokens=50, user="u-1", temperature=0.3,
                  stop=["END"], response_format=ResponseFormat(type="json_object"))
    req.messages.insert(0, Message(role="developer", content=[Text(text="Be terse.")]))
    req.dialect = "openai_chat"
    req.extra = {"logit_bias": {"50256": -100}, "store": True, "service_tier": "auto"}
    resp = await run(mistral, req, stream)
    assert resp.text() == TEXT
    # usage came on the last chunk, unasked
    assert resp.usage.input_tokens == 21 and resp.usage.output_tokens == 9
    b = fake.requests[-1].body
    assert fake.requests[-1].headers["authorization"] == f"Bearer {MISTRAL_KEY}"
    assert b["random_seed"] == 7 and "seed" not in b
    assert b["max_tokens"] == 50 and "max_completion_tokens" not in b
    assert b["messages"][0] == {"role": "system", "content": "Be terse."}
    assert b["stream"] is stream
    assert b["response_format"] == {"type": "json_object"}
    for absent in ("stream_options", "user", "logit_bias", "store", "service_tier"):
        assert absent not in b


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_round_trip_with_foreign_ids(stream: bool, mistral: Mistral,
                                                fake: FakeMistral) -> None:
    req = request("tools", stream, tools=TOOLS, tool_choice=ToolChoice(mode="required"))
    first = await run(mistral, req, stream)
    assert first.text() == PREAMBLE and first.stop_reason is StopReason.TOOL_USE
    assert [(c.id, c.name, json.loads(c.arguments)) for c in first.tool_calls()] == [
        (MISTRAL_CALL_IDS[0], "get_weather", {"city": "Paris"}),
        (MISTRAL_CALL_IDS[1], "get_time", {})]
    assert fake.requests[-1].body["tool_choice"] == "any"
    assert first.usage.input_tokens == 88

    # The history a client replays: an earlier turn made by OpenAI (foreign ids) and the
    # Mistral turn; the results answer both.
    foreign = [ToolCall(id=CHAT_CALL_IDS[0], name="get_time", arguments="{}")]
    req.messages += [
        Message(role="assistant", content=foreign),
        Message(role="tool", content=[ToolResult(call_id=CHAT_CALL_IDS[0],
                                                 content=[Text(text="11:00")])]),
        Message(role="assistant", content=first.content),
        Message(role="tool", content=[ToolResult(call_id=c.id, content=[Text(text="ok")])
                                      for c in first.tool_calls()])]
    req.tool_choice = None
    second = await run(mistral, req, stream)
    assert second.text() == FOLLOWUP
    msgs = fake.requests[-1].body["messages"]
    rewritten = mistral_id(CHAT_CALL_IDS[0])
    assert msgs[1]["tool_calls"][0]["id"] == rewritten
    assert msgs[2] == {"role": "tool", "tool_call_id": rewritten, "content": "11:00",
                       "name": "get_time"}
    assert [m.get("tool_call_id") for m in msgs[4:]] == list(MISTRAL_CALL_IDS)
    assert [m.get("name") for m in msgs[4:]] == ["get_weather", "get_time"]


@pytest.mark.parametrize("stream", [False, True])
async def test_rewritten_id_restored_on_the_way_back(stream: bool, mistral: Mistral) -> None:
    req = request("repeat_call", stream, tools=TOOLS)
    req.messages += [
        Message(role="assistant", content=[ToolCall(id="toolu_01WeatherXyZ",
                                                    name="get_weather",
                                                    arguments='{"city":"Paris"}')]),
        Message(role="tool", content=[ToolResult(call_id="toolu_01WeatherXyZ",
                                                 content=[Text(text="18C")])]),
        Message(role="user", content=[Text(text="scenario:repeat_call again")])]
    resp = await run(mistral, req, stream)
    # the model answered with the mapped id: the client gets its own id back
    assert [c.id for c in resp.tool_calls()] == ["toolu_01WeatherXyZ"]


@pytest.mark.parametrize("stream", [False, True])
async def test_thinking_content_lists(stream: bool, mistral: Mistral) -> None:
    resp = await run(mistral, request("thinking", stream), stream)
    assert resp.text() == THINK_ANSWER
    thinking = [p for p in resp.content if isinstance(p, Thinking)]
    assert [t.text for t in thinking] == [THINKING]


@pytest.mark.parametrize("stream", [False, True])
async def test_custom_tool_emulated(stream: bool, mistral: Mistral, fake: FakeMistral) -> None:
    custom = Tool(name=PATCH_TOOL, kind="custom", description="Apply a patch")
    resp = await run(mistral, request("custom", stream, tools=[custom]), stream)
    (call,) = resp.tool_calls()
    assert call.kind == "custom" and call.name == PATCH_TOOL and call.arguments == PATCH
    tool = fake.requests[-1].body["tools"][0]
    assert tool["type"] == "function"
    assert tool["function"]["parameters"]["properties"] == {"input": {"type": "string"}}


async def test_trailing_assistant_is_a_prefill(mistral: Mistral, fake: FakeMistral) -> None:
    req = request("text", False)
    req.messages.append(Message(role="assistant", content=[Text(text="Sure,")]))
    assert (await mistral.complete(req)).text() == TEXT
    assert fake.requests[-1].body["messages"][-1] == {"role": "assistant", "content": "Sure,",
                                                     "prefix": True}


async def test_images(mistral: Mistral) -> None:
    url = "https://images.example.com/cat.png"
    req = request("image", False)
    req.messages[0].content += [Image(mime="image/png", data=IMAGE_PNG_B64), Image(url=url)]
    resp = await mistral.complete(req)
    assert resp.text() == image_answer([image_note(data=IMAGE_PNG), image_note(url=url)])


async def test_options_from_config(fake: FakeMistral) -> None:
    p = Mistral(model=MISTRAL_MODEL, base_url=fake.url + "/v1", api_key=MISTRAL_KEY,
                safe_prompt=True, prompt_mode="reasoning")
    try:
        await p.complete(request("text", False))
    finally:
        await p.aclose()
    b = fake.requests[-1].body
    assert b["safe_prompt"] is True and b["prompt_mode"] == "reasoning"


# --- failures -----------------------------------------------------------------------------


def test_422_schema_errors_are_invalid_requests() -> None:
    body = json.dumps({"object": "error", "message": {"detail": [
        {"type": "extra_forbidden", "loc": ["body", "stream_options"],
         "msg": "Extra inputs are not permitted", "input": {}}]},
        "type": "invalid_request_error", "param": None, "code": None}).encode()
    err = parse_error(422, body)
    assert isinstance(err, InvalidRequest) and err.status == 400
    assert "body.stream_options: Extra inputs are not permitted" in err.message


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("scenario", sorted(HTTP_FAILURES))
async def test_http_failures(scenario: str, stream: bool, mistral: Mistral) -> None:
    got = await outcome(mistral, scenario, stream)
    assert got.error is not None and not got.in_band
    assert got.error.kind == HTTP_FAILURES[scenario]
    if scenario == "error429":
        assert got.error.retry_after == RETRY_AFTER_SECONDS


async def test_context_length(mistral: Mistral) -> None:
    got = await outcome(mistral, "error400", False)
    assert isinstance(got.error, ContextLengthExceeded)


@pytest.mark.parametrize("stream", [False, True])
async def test_wrong_key(stream: bool, fake: FakeMistral) -> None:
    p = Mistral(model=MISTRAL_MODEL, base_url=fake.url + "/v1", api_key="wrong")
    try:
        got = await outcome(p, "text", stream)
    finally:
        await p.aclose()
    assert got.error is not None and got.error.status == 502


@pytest.mark.parametrize("stream", [False, True])
async def test_cut_malformed_midstream(stream: bool, mistral: Mistral) -> None:
    await assert_broken_streams(mistral, stream, PARTIAL)
    got = await outcome(mistral, "midstream_error", True)
    assert got.error is not None and got.error.message == "Internal server error"

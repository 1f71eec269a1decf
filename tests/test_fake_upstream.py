"""The fake upstream checked against the official SDKs directly (no gateway in between):
if the vendors' own clients accept its bytes, the cross-dialect tests stand on solid
ground."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.fakes.upstream import (
    ANTHROPIC_KEY,
    ANTHROPIC_SIGNATURE,
    ANTHROPIC_TOOL_IDS,
    CHAT_CALL_IDS,
    COUNT_TOKENS,
    ENCRYPTED_REASONING,
    OPENAI_KEY,
    PARTIAL,
    PATCH,
    PATCH_TOOL,
    PREAMBLE,
    RESP_CALL_IDS,
    TEXT,
    THINK_ANSWER,
    THINKING,
    TRUNCATED,
    FakeUpstream,
)

TOOLS_CHAT = [{"type": "function", "function": {"name": "get_weather",
                                                "parameters": {"type": "object"}}}]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as f:
        yield f


@pytest.fixture(scope="module")
def oai(fake: FakeUpstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.url + "/v1", api_key=OPENAI_KEY, max_retries=0)


@pytest.fixture(scope="module")
def ant(fake: FakeUpstream) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.url, api_key=ANTHROPIC_KEY, max_retries=0)


def test_chat_text_json_and_stream(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == TEXT
    chunks = list(oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 11


def test_chat_tools_helper(oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(
            model="m", messages=[{"role": "user", "content": "scenario:tools"}],
            tools=TOOLS_CHAT) as s:
        final = s.get_final_completion()
    msg = final.choices[0].message
    assert msg.content == PREAMBLE
    calls = [(c.id, c.function.name, json.loads(c.function.arguments))
             for c in msg.tool_calls or []]
    assert calls == [(CHAT_CALL_IDS[0], "get_weather", {"city": "Paris"}),
                     (CHAT_CALL_IDS[1], "get_time", {})]


def test_chat_midstream_error_raises(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.APIError, match="server had an error"):
        list(oai.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "scenario:midstream_error"}],
            stream=True))


def test_chat_errors(oai: openai.OpenAI, fake: FakeUpstream) -> None:
    with pytest.raises(openai.RateLimitError) as ei:
        oai.chat.completions.create(model="m",
                                    messages=[{"role": "user", "content": "scenario:error429"}])
    assert ei.value.response.headers["retry-after"] == "7"
    bad = openai.OpenAI(base_url=fake.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError, match="preceeding"):
        oai.chat.completions.create(model="m", messages=[
            {"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "call_x", "content": "y"}])


def test_responses_helper_text_tools_thinking(oai: openai.OpenAI) -> None:
    with oai.responses.stream(model="m", input="hi") as s:
        assert s.get_final_response().output_text == TEXT
    with oai.responses.stream(model="m", input="scenario:tools") as s:
        r = s.get_final_response()
    calls = [(o.call_id, o.name, json.loads(o.arguments)) for o in r.output
             if o.type == "function_call"]
    assert calls == [(RESP_CALL_IDS[0], "get_weather", {"city": "Paris"}),
                     (RESP_CALL_IDS[1], "get_time", {})]
    with oai.responses.stream(model="m", input="scenario:thinking",
                              include=["reasoning.encrypted_content"]) as s:
        r = s.get_final_response()
    reasoning = r.output[0]
    assert reasoning.type == "reasoning"
    assert reasoning.encrypted_content == ENCRYPTED_REASONING
    assert reasoning.summary[0].text == THINKING
    assert r.output_text == THINK_ANSWER
    j = oai.responses.create(model="m", input="hi")
    assert j.output_text == TEXT and j.usage is not None and j.usage.total_tokens == 20


def test_responses_midstream_failed(oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model="m", input="scenario:midstream_error",
                                       stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.failed"
    with (pytest.raises(RuntimeError, match=r"response\.completed"),
          oai.responses.stream(model="m", input="scenario:midstream_error") as s):
        s.get_final_response()


def test_anthropic_text_tools_thinking(ant: anthropic.Anthropic) -> None:
    m = ant.messages.create(model="c", max_tokens=100,
                            messages=[{"role": "user", "content": "hi"}])
    assert m.content[0].text == TEXT
    with ant.messages.stream(model="c", max_tokens=100,
                             messages=[{"role": "user", "content": "hi"}]) as s:
        final = s.get_final_message()
    assert final.content[0].text == TEXT
    assert final.usage.output_tokens == 9
    with ant.messages.stream(model="c", max_tokens=100,
                             messages=[{"role": "user", "content": "scenario:tools"}]) as s:
        final = s.get_final_message()
    uses = [(b.id, b.name, b.input) for b in final.content if b.type == "tool_use"]
    assert uses == [(ANTHROPIC_TOOL_IDS[0], "get_weather", {"city": "Paris"}),
                    (ANTHROPIC_TOOL_IDS[1], "get_time", {})]
    with ant.messages.stream(model="c", max_tokens=2000,
                             thinking={"type": "enabled", "budget_tokens": 1024},
                             messages=[{"role": "user", "content": "scenario:thinking"}]) as s:
        final = s.get_final_message()
    assert final.content[0].type == "thinking"
    assert final.content[0].thinking == THINKING
    assert final.content[0].signature == ANTHROPIC_SIGNATURE
    assert ant.messages.count_tokens(
        model="c", messages=[{"role": "user", "content": "hi"}]).input_tokens == COUNT_TOKENS


def test_anthropic_errors(ant: anthropic.Anthropic, fake: FakeUpstream) -> None:
    with pytest.raises(anthropic.RateLimitError) as ei:
        ant.messages.create(model="c", max_tokens=10,
                            messages=[{"role": "user", "content": "scenario:error429"}])
    assert ei.value.response.headers["retry-after"] == "7"
    got = ""
    with pytest.raises(anthropic.APIStatusError) as es, ant.messages.stream(
            model="c", max_tokens=10,
            messages=[{"role": "user", "content": "scenario:midstream_error"}]) as s:
        for t in s.text_stream:
            got += t
    assert got == PARTIAL
    assert es.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError, match="tool_result"):
        ant.messages.create(model="c", max_tokens=10, messages=[
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1",
                                               "name": "f", "input": {}}]},
            {"role": "user", "content": "no result"}])
    bad = anthropic.Anthropic(base_url=fake.url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="c", max_tokens=10, messages=[{"role": "user",
                                                                 "content": "x"}])


def test_slow_stream_close_is_seen(fake: FakeUpstream) -> None:
    marker = f"scenario:slow n{time.monotonic_ns()}"
    with httpx.Client() as c, c.stream(
            "POST", fake.url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {OPENAI_KEY}"},
            json={"model": "m", "stream": True,
                  "messages": [{"role": "user", "content": marker}]}) as r:
        it = r.iter_lines()
        assert next(it).startswith("data: ")
        t0 = time.monotonic()
    rec = fake.one(marker)
    assert rec.wait(5)
    assert rec.closed_early and rec.closed_at is not None
    assert rec.closed_at - t0 < 1.0


def test_more_scenarios_are_sdk_valid(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    r = oai.chat.completions.create(model="m",
                                    messages=[{"role": "user", "content": "scenario:truncated"}])
    assert r.choices[0].finish_reason == "length" and r.choices[0].message.content == TRUNCATED
    events = list(oai.responses.create(model="m", input="scenario:truncated", stream=True))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details is not None
    with ant.messages.stream(model="c", max_tokens=10,
                             messages=[{"role": "user", "content": "scenario:truncated"}]) as s:
        assert s.get_final_message().stop_reason == "max_tokens"
    with pytest.raises(openai.InternalServerError) as eo:
        oai.chat.completions.create(model="m",
                                    messages=[{"role": "user", "content": "scenario:overloaded"}])
    assert eo.value.status_code == 503
    with pytest.raises(anthropic.InternalServerError) as ea:
        ant.messages.create(model="c", max_tokens=10,
                            messages=[{"role": "user", "content": "scenario:overloaded"}])
    assert ea.value.status_code == 529
    with pytest.raises(openai.BadRequestError) as eb:
        oai.responses.create(model="m", input="scenario:error400")
    assert eb.value.code == "context_length_exceeded"
    with pytest.raises(openai.NotFoundError):
        oai.responses.create(model="m", input="hi", previous_response_id="resp_unknown")


def test_custom_scenario_is_sdk_valid(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    tools: list[Any] = [{"type": "custom", "name": PATCH_TOOL}]
    with oai.responses.stream(model="m", input="scenario:custom", tools=tools) as s:
        r = s.get_final_response()
    assert [(o.type, o.input) for o in r.output] == [("custom_tool_call", PATCH)]
    fn: list[Any] = [{"type": "function", "name": PATCH_TOOL, "parameters": {}}]
    with oai.responses.stream(model="m", input="scenario:custom", tools=fn) as s:
        r = s.get_final_response()
    assert [(o.type, json.loads(o.arguments)) for o in r.output] == \
        [("function_call", {"input": PATCH})]
    chat_tools: list[Any] = [{"type": "custom", "custom": {"name": PATCH_TOOL}}]
    c = oai.chat.completions.create(model="m", tools=chat_tools,
                                    messages=[{"role": "user", "content": "scenario:custom"}])
    tc = (c.choices[0].message.tool_calls or [])[0]
    assert tc.type == "custom" and tc.custom.input == PATCH
    with ant.messages.stream(model="c", max_tokens=10,
                             messages=[{"role": "user", "content": "scenario:custom"}]) as s:
        final = s.get_final_message()
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == {"input": PATCH}

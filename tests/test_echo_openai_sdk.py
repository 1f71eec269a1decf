"""The official openai SDK against the echo model: chat and responses, stream and not,
tools, parallel tools, and the SDK's strict ``.stream()`` helpers."""

from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import API_KEY

MODEL = "dragoman/echo"


@pytest.fixture(scope="module")
def client(echo_gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=echo_gateway + "/v1", api_key=API_KEY, max_retries=0)


def test_chat_non_stream(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hello there"}])
    assert r.object == "chat.completion"
    assert r.model == MODEL
    assert r.choices[0].message.content == "hello there"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None and r.usage.completion_tokens == 2
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_stream_with_usage(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "one two three"}], stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]


def test_chat_parallel_tool_calls(client: openai.OpenAI) -> None:
    prompt = '::tool get_weather {"city":"Paris"}\n::tool get_time {}'
    tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
             for n in ("get_weather", "get_time")]
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}],
                                       tools=tools)
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in msg.tool_calls] == ["get_weather", "get_time"]
    assert json.loads(msg.tool_calls[0].function.arguments) == {"city": "Paris"}
    # Round trip: send results back, the echo model reports them.
    follow = client.chat.completions.create(model=MODEL, tools=tools, messages=[
        {"role": "user", "content": prompt},
        msg.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": "18C"},
        {"role": "tool", "tool_call_id": msg.tool_calls[1].id, "content": "noon"},
    ])
    content = follow.choices[0].message.content
    assert f"Tool {msg.tool_calls[0].id} result: 18C" in content
    assert f"Tool {msg.tool_calls[1].id} result: noon" in content


def test_chat_stream_helper_with_tools(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "strict": True,
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                             "required": ["city"], "additionalProperties": False}}}]
    with client.chat.completions.stream(
        model=MODEL, tools=tools,
        messages=[{"role": "user", "content": 'Checking\n::reply Checking now\n::tool get_weather {"city":"Oslo"}'}],
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    msg = final.choices[0].message
    assert msg.content == "Checking now"
    assert msg.tool_calls[0].function.name == "get_weather"
    assert msg.tool_calls[0].function.parsed_arguments == {"city": "Oslo"}


def test_responses_non_stream(client: openai.OpenAI) -> None:
    r = client.responses.create(model=MODEL, input="hi responses", instructions="be brief")
    assert r.status == "completed"
    assert r.output_text == "hi responses"
    assert r.usage is not None and r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.instructions == "be brief"


def test_responses_stream_helper(client: openai.OpenAI) -> None:
    with client.responses.stream(model=MODEL, input="stream me please") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "stream me please"
    assert final.output_text == "stream me please"


def test_responses_stream_event_order(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model=MODEL, input="a b", stream=True))
    types = [e.type for e in events]
    assert types == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    done = events[-1].response
    assert done.output_text == "a b" and done.usage.total_tokens > 0


def test_responses_function_calls_round_trip(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": False}]
    r = client.responses.create(model=MODEL, tools=tools,
                                input='::tool get_weather {"city":"Rome"}\n::tool get_weather {"city":"Oslo"}')
    calls = [o for o in r.output if o.type == "function_call"]
    assert [json.loads(c.arguments)["city"] for c in calls] == ["Rome", "Oslo"]
    follow = client.responses.create(model=MODEL, tools=tools, previous_response_id=r.id, input=[
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "warm"},
        {"type": "function_call_output", "call_id": calls[1].call_id, "output": "cold"},
    ])
    assert f"Tool {calls[0].call_id} result: warm" in follow.output_text
    assert f"Tool {calls[1].call_id} result: cold" in follow.output_text


def test_responses_stream_function_call(client: openai.OpenAI) -> None:
    with client.responses.stream(model=MODEL, input='::tool lookup {"q":"x"}',
                                 tools=[{"type": "function", "name": "lookup", "parameters": {"type": "object"}, "strict": False}]) as stream:
        final = stream.get_final_response()
    call = final.output[0]
    assert call.type == "function_call" and call.name == "lookup"
    assert json.loads(call.arguments) == {"q": "x"}


def test_responses_store_retrieve_delete(client: openai.OpenAI) -> None:
    r = client.responses.create(model=MODEL, input="remember me")
    got = client.responses.retrieve(r.id)
    assert got.id == r.id and got.output_text == "remember me"
    items = client.responses.input_items.list(r.id)
    assert items.data[0].type == "message"
    deleted = client.responses.delete(r.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


def test_responses_previous_response_chain(client: openai.OpenAI) -> None:
    r1 = client.responses.create(model=MODEL, input="first")
    r2 = client.responses.create(model=MODEL, input="second", previous_response_id=r1.id)
    assert r2.output_text == "second"
    assert r2.previous_response_id == r1.id
    with pytest.raises(openai.NotFoundError) as e:
        client.responses.create(model=MODEL, input="x", previous_response_id="resp_missing")
    assert "previous_response_not_found" in str(e.value.body)


def test_responses_store_false_stores_nothing(client: openai.OpenAI) -> None:
    r = client.responses.create(model=MODEL, input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


def test_models(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "dragoman/echo" in ids and "claude-*" not in ids
    assert client.models.retrieve("dragoman/echo").id == "dragoman/echo"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


@pytest.mark.parametrize(("kind", "exc"), [
    ("rate_limited", openai.RateLimitError),
    ("overloaded", openai.InternalServerError),
    ("invalid_request", openai.BadRequestError),
    ("authentication", openai.APIStatusError),
])
def test_errors_before_stream(client: openai.OpenAI, kind: str, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"::error {kind}"}])
    with pytest.raises(exc):
        list(client.responses.create(model=MODEL, input=f"::error {kind}", stream=True))


def test_error_mid_stream(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "a b c\n::fail overloaded"}], stream=True))
    # Responses report a failure after the first byte as a terminal response.failed event;
    # the SDK helper then has no completed response to give.
    with client.responses.stream(model=MODEL, input="a b c\n::fail overloaded") as s:
        events = list(s)
        with pytest.raises(RuntimeError):
            s.get_final_response()
    assert events[-1].type == "response.failed"
    assert events[-1].response.status == "failed"
    assert events[-1].response.error is not None and events[-1].response.error.message


def test_wrong_key(echo_gateway: str) -> None:
    bad = openai.OpenAI(base_url=echo_gateway + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert "sk-wrong" not in str(e.value)

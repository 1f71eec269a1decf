"""The official anthropic SDK against the echo model."""

from __future__ import annotations

import anthropic
import pytest

from tests.conftest import API_KEY

MODEL = "dragoman/echo"


@pytest.fixture(scope="module")
def client(echo_gateway: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=echo_gateway, api_key=API_KEY, max_retries=0)


def test_messages_non_stream(client: anthropic.Anthropic) -> None:
    m = client.messages.create(model=MODEL, max_tokens=100, system="be nice",
                               messages=[{"role": "user", "content": "hello claude"}])
    assert m.type == "message" and m.role == "assistant"
    assert m.content[0].type == "text" and m.content[0].text == "hello claude"
    assert m.stop_reason == "end_turn"
    assert m.usage.output_tokens == 2 and m.usage.input_tokens > 0


def test_messages_stream_raw(client: anthropic.Anthropic) -> None:
    events = list(client.messages.create(model=MODEL, max_tokens=100, stream=True,
                                         messages=[{"role": "user", "content": "x y"}]))
    types = [e.type for e in events]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == "x y"


def test_messages_stream_helper(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=MODEL, max_tokens=100,
                                messages=[{"role": "user", "content": "streamed words here"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "streamed words here"
    assert final.content[0].text == "streamed words here"


def test_tool_use_round_trip(client: anthropic.Anthropic) -> None:
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    prompt = '::tool get_weather {"city":"Paris"}\n::tool get_weather {"city":"Lima"}'
    m = client.messages.create(model=MODEL, max_tokens=100, tools=tools,
                               messages=[{"role": "user", "content": prompt}])
    assert m.stop_reason == "tool_use"
    uses = [b for b in m.content if b.type == "tool_use"]
    assert [u.input for u in uses] == [{"city": "Paris"}, {"city": "Lima"}]
    assert all(u.id.startswith("toolu_") for u in uses)
    m2 = client.messages.create(model=MODEL, max_tokens=100, tools=tools, messages=[
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": [u.model_dump() for u in uses]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": uses[0].id, "content": "sunny"},
            {"type": "tool_result", "tool_use_id": uses[1].id, "content": "rain", "is_error": True},
        ]},
    ])
    text = m2.content[0].text
    assert f"Tool {uses[0].id} result: sunny" in text
    assert f"Tool {uses[1].id} error: rain" in text


def test_tool_use_stream_helper(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=MODEL, max_tokens=100,
                                tools=[{"name": "lookup", "input_schema": {"type": "object"}}],
                                messages=[{"role": "user", "content": '::tool lookup {"q":[1,2]}'}]) as s:
        final = s.get_final_message()
    assert final.content[0].type == "tool_use" and final.content[0].input == {"q": [1, 2]}


def test_thinking(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=MODEL, max_tokens=2000,
                                thinking={"type": "enabled", "budget_tokens": 1024},
                                messages=[{"role": "user", "content": "::think let me see\n::reply done"}]) as s:
        final = s.get_final_message()
    assert final.content[0].type == "thinking"
    assert final.content[0].thinking == "let me see"
    assert final.content[1].text == "done"


def test_system_role_inside_messages(client: anthropic.Anthropic) -> None:
    # Claude Code sends role "system" inside messages; it must be accepted.
    m = client.messages.create(model="claude-test-model", max_tokens=50, messages=[
        {"role": "user", "content": "first"},
        {"role": "system", "content": "mid-conversation system text"},  # type: ignore[list-item]
        {"role": "user", "content": "second"},
    ])
    assert m.content[0].text == "second"


def test_count_tokens_and_models(client: anthropic.Anthropic) -> None:
    n = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "count these words please"}])
    assert n.input_tokens > 0
    models = client.models.list()
    assert "dragoman/echo" in [m.id for m in models.data]
    assert client.models.retrieve("dragoman/echo").type == "model"


def test_errors(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "::error rate_limited"}])
    with pytest.raises(anthropic.InternalServerError) as e:
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "::error overloaded"}])
    assert e.value.status_code == 529
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.APIStatusError), client.messages.stream(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "a b c\n::fail overloaded"}]) as s:
        s.get_final_message()


def test_bearer_auth_and_beta_query(echo_gateway: str) -> None:
    c = anthropic.Anthropic(base_url=echo_gateway, auth_token=API_KEY, max_retries=0)
    m = c.beta.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "beta"}])
    assert m.content[0].text == "beta"

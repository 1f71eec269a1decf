"""Parallel tool calls, round-tripped: turn 1 gets two calls from the upstream; turn 2
sends the results back in the client's dialect; the upstream must receive the whole
conversation translated into its own (ids byte-for-byte, arguments intact, results in the
right place, system hoisted, output cap present)."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.fakes.upstream import (
    ANTHROPIC_TOOL_IDS,
    CHAT_CALL_IDS,
    FOLLOWUP,
    PREAMBLE,
    RESP_CALL_IDS,
    FakeUpstream,
)

from .clients import (
    INGRESS,
    MODES,
    SYSTEM,
    TIME_SCHEMA,
    TOOL_RESULTS,
    UPSTREAM_PATH,
    UPSTREAMS,
    WEATHER_SCHEMA,
    call,
    prompt,
    tool_results,
    upstream_max_tokens,
    upstream_tools,
    upstream_view,
)

UP_IDS = {"chat-up": CHAT_CALL_IDS, "resp-up": RESP_CALL_IDS, "claude-up": ANTHROPIC_TOOL_IDS}
TOOL_STOP = {"chat": "tool_calls", "responses": "completed", "messages": "tool_use"}
END_TURN = {"chat": "stop", "responses": "completed", "messages": "end_turn"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_parallel_tool_calls_round_trip(ingress: str, up: str, mode: str, oai: openai.OpenAI,
                                        ant: anthropic.Anthropic,
                                        upstream: FakeUpstream) -> None:
    user, nonce = prompt("tools")
    # Chat and Responses clients send no output cap: an Anthropic upstream still needs one.
    kw = {"max_tokens": 300} if ingress == "messages" else {}
    t1 = call(oai, ant, ingress, up, mode, user, tools=True, **kw)

    ids = UP_IDS[up]
    assert t1.text == PREAMBLE
    assert t1.calls == [(ids[0], "get_weather", {"city": "Paris"}),
                        (ids[1], "get_time", {})]
    assert t1.stop == TOOL_STOP[ingress]
    # Anthropic's message_delta repeats the cumulative usage (output 96, input 13 + 100
    # cached): overwritten, never added to message_start's.
    want_usage = {"input": 113, "output": 96} if up == "claude-up" else \
        {"input": 82, "output": 31}
    assert {k: t1.usage.get(k) for k in want_usage} == want_usage, t1.usage

    first = upstream.one(nonce)
    assert first.path == UPSTREAM_PATH[up]
    assert upstream_tools(first) == {"get_weather": WEATHER_SCHEMA, "get_time": TIME_SCHEMA}

    # turn 2: the client's own history + the results, in its own dialect
    history = [{"role": "user", "content": user}, *t1.history,
               *tool_results(ingress, t1.calls)]
    t2 = call(oai, ant, ingress, up, mode, "", tools=True, history=history, **kw)
    assert t2.text == FOLLOWUP
    assert t2.calls == []
    assert t2.stop == END_TURN[ingress]

    recs = upstream.find(nonce)
    assert len(recs) == 2, [r.path for r in recs]
    second = recs[1]
    system, turns = upstream_view(second)
    assert system == SYSTEM
    assert turns == [
        ("user", [("text", user)]),
        ("assistant", [("text", PREAMBLE),
                       ("call", ids[0], "get_weather", {"city": "Paris"}),
                       ("call", ids[1], "get_time", {})]),
        ("tool", [("result", ids[0], TOOL_RESULTS[0]), ("result", ids[1], TOOL_RESULTS[1])]),
    ]
    if up == "claude-up":
        body = second.body
        assert isinstance(body.get("max_tokens"), int) and body["max_tokens"] > 0
        assert all(m["role"] in ("user", "assistant") for m in body["messages"])
        results_msg = body["messages"][-1]
        assert results_msg["role"] == "user"
        assert [b["type"] for b in results_msg["content"]] == ["tool_result", "tool_result"]
    elif ingress == "messages":
        assert upstream_max_tokens(second) == 300

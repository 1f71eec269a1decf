"""Agents served as models by a real ``dragoman serve``: listed in /v1/models, answering on
Chat Completions, Responses and Messages; their inner life streams as named ``dragoman.*``
SSE events that the official SDKs skip (raw iteration and stream helpers alike) and that
``dragoman.agents.client`` reads."""

from __future__ import annotations

import json
import re
from typing import Any

import anthropic
import httpx
import openai
import pytest

from dragoman.agents.client import (
    OtherEvent,
    Step,
    ToolCallResult,
    ToolCallStart,
    iter_events,
    iter_sse,
)
from tests.conftest import API_KEY
from tests.cross_dialect.clients import (
    INGRESS,
    Turn,
    chat_call,
    messages_call,
    prompt,
    responses_turn_from_events,
    upstream_view,
)
from tests.fakes.upstream import FOLLOWUP, PREAMBLE, FakeUpstream

from .conftest import AGENT_SYSTEM
from .sample_tools import TIME, WEATHER

MODES = ("json", "stream", "helper")
WEATHER_PROMPT = '::tool get_weather {"city": "Paris"}'
WEATHER_ANSWER = re.compile(r"^Tool (call_|toolu_)\w+ result: 18C, sunny in Paris$")
DRAGOMAN_TYPES = ("dragoman.step", "dragoman.tool_call_start", "dragoman.tool_call_result")


def _dragoman_type(obj: Any) -> str | None:
    t = getattr(obj, "type", None)
    if t is None:
        t = (getattr(obj, "model_extra", None) or {}).get("type")
    return t if isinstance(t, str) and t.startswith("dragoman.") else None


def ask(oai: openai.OpenAI, ant: anthropic.Anthropic, ingress: str, model: str, mode: str,
        user: str, **kw: Any) -> tuple[Turn, list[str]]:
    """One turn through the official SDK; also returns the dragoman.* event types the
    raw stream delivered to the caller's loop (they must not break it)."""
    if ingress == "chat":
        turn = chat_call(oai, model, [{"role": "user", "content": user}], mode, **kw)
    elif ingress == "responses":
        if mode == "stream":
            events = list(oai.responses.create(model=model, input=user, stream=True, **kw))
            ours = [e for e in events if _dragoman_type(e)]
            # the Responses grammar (sequence numbers…) holds for the dialect's own events
            turn = responses_turn_from_events([e for e in events if not _dragoman_type(e)])
            return turn, [t for e in ours if (t := _dragoman_type(e))]
        if mode == "json":
            r = oai.responses.create(model=model, input=user, **kw)
        else:
            with oai.responses.stream(model=model, input=user, **kw) as s:
                for _ in s:
                    pass
                r = s.get_final_response()
        turn = Turn(text=r.output_text, stop=r.status, raw=r,
                    calls=[(i.call_id, i.name, json.loads(i.arguments)) for i in r.output
                           if i.type == "function_call"])
    else:
        turn = messages_call(ant, model, [{"role": "user", "content": user}], mode, **kw)
    seen = [t for e in (turn.raw if isinstance(turn.raw, list) else [])
            if (t := _dragoman_type(e))]
    return turn, seen


def test_agents_are_listed_as_models(aoai: openai.OpenAI, aant: anthropic.Anthropic) -> None:
    ids = {m.id for m in aoai.models.list()}
    assert {"echo-agent", "one-step-agent", "agent-chat-up", "dragoman/echo"} <= ids
    assert "claude-*" not in ids
    ant_ids = {m.id for m in aant.models.list()}
    assert "echo-agent" in ant_ids
    assert aoai.models.retrieve("echo-agent").owned_by == "dragoman-agent"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ingress", INGRESS)
def test_sdks_finish_an_agent_turn(ingress: str, mode: str, aoai: openai.OpenAI,
                                   aant: anthropic.Anthropic) -> None:
    turn, seen = ask(aoai, aant, ingress, "echo-agent", mode, WEATHER_PROMPT)
    assert WEATHER_ANSWER.match(turn.text), turn.text
    assert turn.calls == []  # the agent's own call is not the client's business
    assert turn.stop in ("stop", "completed", "end_turn")
    if mode == "stream":
        # the raw iteration really met the named events, and was not disturbed by them
        assert seen == ["dragoman.step", "dragoman.tool_call_start",
                        "dragoman.tool_call_result", "dragoman.step"], seen


@pytest.mark.parametrize("ingress", INGRESS)
def test_max_steps_renders_like_max_tokens(ingress: str, aoai: openai.OpenAI,
                                           aant: anthropic.Anthropic) -> None:
    turn, _ = ask(aoai, aant, ingress, "one-step-agent", "stream", WEATHER_PROMPT)
    assert turn.stop == {"chat": "length", "responses": "incomplete",
                         "messages": "max_tokens"}[ingress]


# --- the raw SSE bytes and the client helper ----------------------------------------------


def _post(base: str, ingress: str, model: str, user: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {API_KEY}"}
    if ingress == "chat":
        path, body = "/v1/chat/completions", {"messages": [{"role": "user", "content": user}]}
    elif ingress == "responses":
        path, body = "/v1/responses", {"input": user}
    else:
        path, body = "/v1/messages", {"max_tokens": 500,
                                      "messages": [{"role": "user", "content": user}]}
        headers["anthropic-version"] = "2023-06-01"
    r = httpx.post(base + path, json={"model": model, "stream": True, **body}, headers=headers,
                   timeout=30)
    assert r.status_code == 200, r.text
    return r


@pytest.mark.parametrize("ingress", INGRESS)
def test_named_events_interleave_with_the_dialect_frames(ingress: str,
                                                         agent_gateway: str) -> None:
    r = _post(agent_gateway, ingress, "echo-agent",
              '::tool get_weather {"city": "Paris"}\n::tool get_time {}\n::tool explode {}')
    frames = list(iter_sse(r.content))
    names = [n for n, _ in frames]
    ours = [i for i, n in enumerate(names) if n and n.startswith("dragoman.")]
    # the dialect opens the stream and closes it: our frames sit in between
    assert ours[0] > 0 and ours[-1] < len(frames) - 1
    assert names[ours[0]] == "dragoman.step"
    events = list(iter_events(r.content))
    assert [type(e).__name__ for e in events] == (
        ["Step"] + ["ToolCallStart"] * 3 + ["ToolCallResult"] * 3 + ["Step"])
    assert [e.index for e in events if isinstance(e, Step)] == [0, 1]
    starts = {e.name: e for e in events if isinstance(e, ToolCallStart)}
    results = {e.name: e for e in events if isinstance(e, ToolCallResult)}
    assert starts["get_weather"].args == {"city": "Paris"} and starts["get_time"].args == {}
    assert results["get_weather"] == ToolCallResult(
        id=starts["get_weather"].id, name="get_weather", result=f"{WEATHER} in Paris",
        is_error=False)
    assert results["get_time"].result == TIME
    assert results["explode"].is_error
    assert results["explode"].result == "tool 'explode' failed: RuntimeError: exploded: boom"
    # every payload says its own type; the Chat ones also carry a no-op choice
    for name, data in frames:
        if name and name.startswith("dragoman."):
            payload = json.loads(data)
            assert payload["type"] == name
            if ingress == "chat":
                assert payload["choices"] == [{"index": 0, "delta": {}, "logprobs": None,
                                               "finish_reason": None}]
            else:
                assert "choices" not in payload


def test_client_helper_reads_sdk_raw_responses(aoai: openai.OpenAI) -> None:
    with aoai.chat.completions.with_streaming_response.create(
            model="echo-agent", stream=True,
            messages=[{"role": "user", "content": WEATHER_PROMPT}]) as raw:
        events = list(iter_events(raw))
    assert [type(e).__name__ for e in events] == ["Step", "ToolCallStart", "ToolCallResult",
                                                  "Step"]


def test_non_streamed_answers_hide_the_inner_life(aoai: openai.OpenAI) -> None:
    r = aoai.chat.completions.create(model="echo-agent",
                                     messages=[{"role": "user", "content": WEATHER_PROMPT}])
    assert WEATHER_ANSWER.match(r.choices[0].message.content or "")
    assert r.choices[0].message.tool_calls is None
    assert r.usage is not None and r.usage.prompt_tokens > 0


def test_unknown_future_events_are_kept_for_the_caller() -> None:
    raw = (b'event: dragoman.verifier_score\ndata: {"type": "dragoman.verifier_score",'
           b' "score": 0.5}\n\ndata: {"x": 1}\n\n')
    assert list(iter_events(raw)) == [OtherEvent("dragoman.verifier_score",
                                                 {"type": "dragoman.verifier_score",
                                                  "score": 0.5})]


# --- agents over the fake vendor upstreams ----------------------------------------------


@pytest.mark.parametrize("up", ("chat-up", "resp-up", "claude-up"))
@pytest.mark.parametrize("ingress", INGRESS)
def test_agent_runs_parallel_tools_over_a_vendor_upstream(
        ingress: str, up: str, aoai: openai.OpenAI, aant: anthropic.Anthropic,
        agent_upstream: FakeUpstream) -> None:
    user, nonce = prompt("tools")
    turn, seen = ask(aoai, aant, ingress, f"agent-{up}", "stream", user)
    assert turn.text == f"{PREAMBLE}\n\n{FOLLOWUP}"
    assert seen == ["dragoman.step", "dragoman.tool_call_start", "dragoman.tool_call_start",
                    "dragoman.tool_call_result", "dragoman.tool_call_result", "dragoman.step"]
    first, second = agent_upstream.find(nonce)
    system, msgs = upstream_view(first)
    assert system == AGENT_SYSTEM and [role for role, _ in msgs] == ["user"]
    # one turn later the vendor got its own calls back with both results
    system, msgs = upstream_view(second)
    assert system == AGENT_SYSTEM
    assert [role for role, _ in msgs] == ["user", "assistant", "tool"]
    calls = {item[2]: item[1] for item in msgs[1][1] if item[0] == "call"}
    assert ("text", PREAMBLE) in msgs[1][1] and set(calls) == {"get_weather", "get_time"}
    assert sorted(msgs[2][1]) == sorted([("result", calls["get_weather"], f"{WEATHER} in Paris"),
                                         ("result", calls["get_time"], TIME)])
    # usage counts both upstream calls: more than the plain model's first answer alone
    plain, _ = ask(aoai, aant, ingress, up, "stream", prompt("tools")[0])
    assert plain.calls and turn.usage["output"] > plain.usage["output"] > 0
    assert turn.usage["input"] > plain.usage["input"] > 0


def test_agent_and_client_system_text_reach_the_upstream(aoai: openai.OpenAI,
                                                         agent_upstream: FakeUpstream) -> None:
    user, nonce = prompt("text")
    aoai.chat.completions.create(model="agent-claude-up",
                                 messages=[{"role": "system", "content": "Client rules."},
                                           {"role": "user", "content": user}])
    rec = agent_upstream.one(nonce)
    system, _ = upstream_view(rec)
    assert system == f"{AGENT_SYSTEM}\n\nClient rules."
    assert [t["name"] for t in rec.body["tools"]] == ["get_weather", "get_time"]


# --- client tools ---------------------------------------------------------------------------

ASK_SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
CLIENT_PROMPT = '::tool get_weather {"city": "Rome"}\n::tool ask_user {"q": "units?"}'


def test_client_tools_end_the_turn_and_continue_the_loop_chat(aoai: openai.OpenAI) -> None:
    tools: Any = [{"type": "function", "function": {"name": "ask_user",
                                                    "parameters": ASK_SCHEMA}}]
    msgs: list[Any] = [{"role": "user", "content": CLIENT_PROMPT}]
    r = aoai.chat.completions.create(model="echo-agent", messages=msgs, tools=tools)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "ask_user" and json.loads(call.function.arguments) == \
        {"q": "units?"}
    msgs += [choice.message.model_dump(exclude_none=True),
             {"role": "tool", "tool_call_id": call.id, "content": "metric"}]
    r2 = aoai.chat.completions.create(model="echo-agent", messages=msgs, tools=tools)
    text = r2.choices[0].message.content or ""
    # the model saw the agent's own result (kept by the agent) and the client's
    assert "18C, sunny in Rome" in text and f"Tool {call.id} result: metric" in text
    assert r2.choices[0].finish_reason == "stop"


def test_client_tools_end_the_turn_and_continue_the_loop_messages(
        aant: anthropic.Anthropic) -> None:
    tools: Any = [{"name": "ask_user", "input_schema": ASK_SCHEMA}]
    msgs: list[Any] = [{"role": "user", "content": CLIENT_PROMPT}]
    with aant.messages.stream(model="echo-agent", max_tokens=500, messages=msgs,
                              tools=tools) as s:
        m = s.get_final_message()
    assert m.stop_reason == "tool_use"
    (call,) = [b for b in m.content if b.type == "tool_use"]
    assert call.name == "ask_user" and call.id.startswith("toolu_")
    msgs += [{"role": "assistant", "content": [b.model_dump(exclude_none=True)
                                               for b in m.content]},
             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                           "content": "metric"}]}]
    m2 = aant.messages.create(model="echo-agent", max_tokens=500, messages=msgs, tools=tools)
    text = "".join(b.text for b in m2.content if b.type == "text")
    assert "18C, sunny in Rome" in text and f"Tool {call.id} result: metric" in text


def test_client_tools_end_the_turn_and_continue_the_loop_responses(
        aoai: openai.OpenAI) -> None:
    tools: Any = [{"type": "function", "name": "ask_user", "parameters": ASK_SCHEMA,
                   "strict": False}]
    r = aoai.responses.create(model="echo-agent", input=CLIENT_PROMPT, tools=tools)
    (call,) = [i for i in r.output if i.type == "function_call"]
    assert call.name == "ask_user"
    r2 = aoai.responses.create(model="echo-agent", previous_response_id=r.id, tools=tools,
                               input=[{"type": "function_call_output", "call_id": call.call_id,
                                       "output": "metric"}])
    assert "18C, sunny in Rome" in r2.output_text
    assert f"Tool {call.call_id} result: metric" in r2.output_text


def test_agent_bash_and_files_in_the_workspace(aoai: openai.OpenAI) -> None:
    r = aoai.chat.completions.create(model="echo-agent", messages=[{
        "role": "user", "content": '::tool read_file {"path": "notes.txt"}\n'
                                   '::tool bash {"command": "wc -c < notes.txt"}\n'
                                   '::tool read_file {"path": "../../etc/passwd"}'}])
    text = r.choices[0].message.content or ""
    assert "result: the launch code is zebra-42" in text
    assert "result: 28" in text
    assert "error: '../../etc/passwd' is outside the workspace" in text

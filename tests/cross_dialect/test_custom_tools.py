"""Free-text (custom) tools, as Codex sends ``apply_patch``: a Responses or Chat client
declares a custom tool; an upstream without custom tools (Anthropic) gets a function with
one string argument ``input`` and its call comes back to the client as a native custom
call with the raw text; the result goes back as a custom tool output."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.fakes.upstream import CUSTOM_IDS, FOLLOWUP, PATCH, PATCH_TOOL, FakeUpstream

from .clients import (
    SYSTEM,
    UPSTREAMS,
    check_responses_events,
    prompt,
    upstream_view,
)

GRAMMAR = "start: /(.|\\n)+/"
RESP_CUSTOM = [{"type": "custom", "name": PATCH_TOOL, "description": "Apply a patch",
                "format": {"type": "grammar", "syntax": "lark", "definition": GRAMMAR}}]
CHAT_CUSTOM = [{"type": "custom", "custom": {
    "name": PATCH_TOOL, "description": "Apply a patch",
    "format": {"type": "grammar", "grammar": {"syntax": "lark", "definition": GRAMMAR}}}}]
UP_API = {"chat-up": "chat", "resp-up": "responses", "claude-up": "anthropic"}
EMULATED = {"type": "object", "properties": {"input": {"type": "string"}},
            "required": ["input"]}


def check_upstream_declaration(rec: Any, up: str) -> None:
    tools = rec.body["tools"]
    assert len(tools) == 1
    t = tools[0]
    if up == "claude-up":
        assert t["name"] == PATCH_TOOL and t["input_schema"] == EMULATED
    elif up == "chat-up":
        assert t["type"] == "custom" and t["custom"]["name"] == PATCH_TOOL
        assert t["custom"]["format"] == {"type": "grammar", "grammar": {
            "syntax": "lark", "definition": GRAMMAR}}
    else:
        assert t["type"] == "custom" and t["name"] == PATCH_TOOL
        assert t["format"] == {"type": "grammar", "syntax": "lark", "definition": GRAMMAR}


def check_round_trip(rec: Any, user: str, call_id: str) -> None:
    system, turns = upstream_view(rec)
    assert system == SYSTEM
    assert turns == [("user", [("text", user)]),
                     ("assistant", [("call", call_id, PATCH_TOOL, {"input": PATCH})]),
                     ("tool", [("result", call_id, "Done")])]


@pytest.mark.parametrize("mode", ["json", "stream", "helper"])
@pytest.mark.parametrize("up", UPSTREAMS)
def test_responses_custom_tool(up: str, mode: str, oai: openai.OpenAI, upstream: FakeUpstream,
                               request: pytest.FixtureRequest) -> None:
    user, nonce = prompt("custom")
    kw: dict[str, Any] = {"model": up, "instructions": SYSTEM, "tools": RESP_CUSTOM}
    inp: list[Any] = [{"role": "user", "content": user}]
    if mode == "json":
        r = oai.responses.create(input=inp, **kw)
    elif mode == "helper":
        with oai.responses.stream(input=inp, **kw) as s:
            r = s.get_final_response()
    else:
        events = list(oai.responses.create(input=inp, stream=True, **kw))
        check_responses_events(events)
        r = events[-1].response
        deltas = "".join(e.delta for e in events
                         if e.type == "response.custom_tool_call_input.delta")
        assert deltas == PATCH
        done = [e.item for e in events if e.type == "response.output_item.done"]
        assert [(d.type, d.input) for d in done] == [("custom_tool_call", PATCH)]
    calls = [o for o in r.output if o.type == "custom_tool_call"]
    assert [(c.call_id, c.name, c.input) for c in calls] == \
        [(CUSTOM_IDS[UP_API[up]], PATCH_TOOL, PATCH)]
    assert not [o for o in r.output if o.type == "function_call"]
    check_upstream_declaration(upstream.one(nonce), up)

    history = [*inp, *(o.model_dump(exclude_none=True) for o in r.output),
               {"type": "custom_tool_call_output", "call_id": calls[0].call_id,
                "output": "Done"}]
    r2 = oai.responses.create(input=history, **kw)
    assert r2.output_text == FOLLOWUP
    check_round_trip(upstream.find(nonce)[1], user, calls[0].call_id)


@pytest.mark.parametrize("mode", ["json", "stream"])
@pytest.mark.parametrize("up", UPSTREAMS)
def test_chat_custom_tool(up: str, mode: str, oai: openai.OpenAI, upstream: FakeUpstream,
                          request: pytest.FixtureRequest) -> None:
    user, nonce = prompt("custom")
    msgs: list[Any] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
    if mode == "json":
        r = oai.chat.completions.create(model=up, messages=msgs, tools=CHAT_CUSTOM)
        tc = r.choices[0].message.tool_calls or []
        assert len(tc) == 1 and tc[0].type == "custom"
        call_id, name, text = tc[0].id, tc[0].custom.name, tc[0].custom.input
        finish = r.choices[0].finish_reason
    else:
        call_id = name = finish = None
        text = ""
        for c in oai.chat.completions.create(model=up, messages=msgs, tools=CHAT_CUSTOM,
                                             stream=True):
            for ch in c.choices:
                finish = ch.finish_reason or finish
                for d in ch.delta.tool_calls or []:
                    raw = d.model_dump()
                    assert raw["index"] == 0
                    if raw.get("id"):
                        assert call_id is None, "id on a later fragment"
                        call_id = raw["id"]
                        assert raw.get("type") == "custom"
                        name = raw["custom"]["name"]
                    text += (raw.get("custom") or {}).get("input") or ""
                    assert not raw.get("function"), "a custom call must not stream as function"
    assert (call_id, name, text) == (CUSTOM_IDS[UP_API[up]], PATCH_TOOL, PATCH)
    assert finish == "tool_calls"
    check_upstream_declaration(upstream.one(nonce), up)

    msgs += [{"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "custom", "custom": {"name": PATCH_TOOL, "input": PATCH}}]},
        {"role": "tool", "tool_call_id": call_id, "content": "Done"}]
    r2 = oai.chat.completions.create(model=up, messages=msgs, tools=CHAT_CUSTOM)
    assert r2.choices[0].message.content == FOLLOWUP
    check_round_trip(upstream.find(nonce)[1], user, call_id)

"""The same-dialect fast path, seen from the official SDKs over real sockets.

A client of the upstream's own dialect gets the upstream's bytes: its ids, its exact
frames; the upstream gets the client's body with only ``model`` changed. The same model
with ``passthrough: false`` is translated (gateway ids, rendered bodies), which is how the
tests tell the two paths apart. Usage and cost are still reported, errors still arrive in
the client's envelope, broken streams still end in-band, and what needs the neutral
events (stored Responses, Claude Code's system messages) still takes the translating path.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.cross_dialect.clients import (
    CLIENT_KEY,
    chat_turn_from_chunks,
    check_responses_events,
    messages_turn_from_events,
    prompt,
    responses_turn_from_events,
)
from tests.fakes.cut_upstream import PARTIAL, CutUpstream
from tests.fakes.upstream import (
    ANTHROPIC_CACHE_READ,
    ANTHROPIC_INPUT,
    ANTHROPIC_KEY,
    ANTHROPIC_OUTPUT,
    CHAT_USAGE,
    OPENAI_KEY,
    RESPONSE_ID,
    TEXT,
    FakeUpstream,
)
from tests.gateway_proc import log_path, run_gateway

CAPS = {"input_cost_per_mtok": 3.0, "output_cost_per_mtok": 15.0,
        "cached_input_cost_per_mtok": 0.3}


def _entries(fake: FakeUpstream, cut: CutUpstream) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, provider, model, base, key in (
            ("chat", "openai", "gpt-fake-chat", fake.url + "/v1", OPENAI_KEY),
            ("resp", "openai_responses", "gpt-fake-resp", fake.url + "/v1", OPENAI_KEY),
            ("claude", "anthropic", "claude-fake-up", fake.url, ANTHROPIC_KEY)):
        common = {"provider": provider, "model": model, "api_key": key, "capabilities": CAPS}
        out.append({"name": f"{name}-fast", "base_url": base, **common})
        out.append({"name": f"{name}-slow", "base_url": base, "passthrough": False, **common})
        out.append({"name": f"{name}-cut", "base_url": cut.url + ("/v1" if name != "claude"
                                                                   else ""), **common})
    return out


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def cut() -> Iterator[CutUpstream]:
    with CutUpstream() as c:
        yield c


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("passthrough-gw")


@pytest.fixture(scope="module")
def gateway(upstream: FakeUpstream, cut: CutUpstream, tmp: Path) -> Iterator[str]:
    with run_gateway({"models": _entries(upstream, cut)}, tmp, args=["--log-level", "info"]
                     ) as base:
        yield base


@pytest.fixture(scope="module")
def oai(gateway: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway + "/v1", api_key=CLIENT_KEY, max_retries=0,
                       timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def ant(gateway: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway, api_key=CLIENT_KEY, max_retries=0,
                             timeout=30) as c:
        yield c


def cost(input_tokens: int, output_tokens: int, cached: int = 0) -> float:
    return ((input_tokens - cached) * CAPS["input_cost_per_mtok"]
            + cached * CAPS["cached_input_cost_per_mtok"]
            + output_tokens * CAPS["output_cost_per_mtok"]) / 1e6


def check_usage_headers(headers: Any, inp: int, out: int, cached: int = 0) -> None:
    assert int(headers["x-dragoman-input-tokens"]) == inp
    assert int(headers["x-dragoman-output-tokens"]) == out
    assert int(headers["x-dragoman-cached-tokens"]) == cached
    assert float(headers["x-dragoman-cost-usd"]) == pytest.approx(cost(inp, out, cached))


# --- whole answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["fast", "slow"])
def test_chat(path: str, oai: openai.OpenAI, upstream: FakeUpstream) -> None:
    user, nonce = prompt("text")
    raw = oai.chat.completions.with_raw_response.create(
        model=f"chat-{path}", max_tokens=50, messages=[{"role": "user", "content": user}],
        extra_body={"x_vendor_knob": {"a": 1}})
    r = raw.parse()
    assert r.choices[0].message.content == TEXT
    check_usage_headers(raw.headers, CHAT_USAGE["prompt_tokens"],
                        CHAT_USAGE["completion_tokens"])
    rec = upstream.one(nonce)
    assert rec.body["model"] == "gpt-fake-chat"
    assert rec.body["x_vendor_knob"] == {"a": 1}  # same dialect: forwarded either way
    if path == "fast":
        assert r.id == "chatcmpl-fake01"  # the upstream's own bytes
        assert rec.body == {"messages": [{"role": "user", "content": user}],
                            "model": "gpt-fake-chat", "max_tokens": 50,
                            "x_vendor_knob": {"a": 1}}
    else:
        assert r.id != "chatcmpl-fake01" and r.model == "chat-slow"
        assert rec.body["max_completion_tokens"] == 50 and "max_tokens" not in rec.body


@pytest.mark.parametrize("path", ["fast", "slow"])
def test_responses(path: str, oai: openai.OpenAI, upstream: FakeUpstream) -> None:
    user, nonce = prompt("text")
    raw = oai.responses.with_raw_response.create(model=f"resp-{path}", input=user, store=False)
    r = raw.parse()
    assert r.output_text == TEXT
    assert int(raw.headers["x-dragoman-input-tokens"]) == r.usage.input_tokens > 0
    rec = upstream.one(nonce)
    if path == "fast":
        assert r.id == RESPONSE_ID
        assert rec.body == {"input": user, "model": "gpt-fake-resp", "store": False}
    else:
        assert r.id != RESPONSE_ID and isinstance(rec.body["input"], list)


@pytest.mark.parametrize("path", ["fast", "slow"])
def test_messages(path: str, ant: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    user, nonce = prompt("text")
    raw = ant.messages.with_raw_response.create(
        model=f"claude-{path}", max_tokens=64, system="Be brief.",
        messages=[{"role": "user", "content": user}])
    m = raw.parse()
    assert m.content[0].type == "text" and m.content[0].text == TEXT
    total_in = ANTHROPIC_INPUT + ANTHROPIC_CACHE_READ
    check_usage_headers(raw.headers, total_in, ANTHROPIC_OUTPUT, ANTHROPIC_CACHE_READ)
    rec = upstream.one(nonce)
    if path == "fast":
        assert m.id == "msg_01FakeJson"
        assert rec.body == {"max_tokens": 64, "messages": [{"role": "user", "content": user}],
                            "model": "claude-fake-up", "system": "Be brief."}
    else:
        assert m.id != "msg_01FakeJson" and m.model == "claude-slow"


# --- streams ------------------------------------------------------------------------------------


@pytest.mark.parametrize("include_usage", [True, False])
def test_chat_stream(include_usage: bool, oai: openai.OpenAI, upstream: FakeUpstream) -> None:
    user, nonce = prompt("text")
    kw: dict[str, Any] = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(oai.chat.completions.create(model="chat-fast", stream=True,
                                              messages=[{"role": "user", "content": user}],
                                              **kw))
    t = chat_turn_from_chunks(chunks)
    assert t.text == TEXT and t.stop == "stop"
    assert {c.id for c in chunks} == {"chatcmpl-fake02"}
    if include_usage:
        assert t.usage["input"] == CHAT_USAGE["prompt_tokens"]
    else:
        # the gateway asked for usage to count it, but the client did not: it never sees it
        assert all(c.usage is None and c.choices for c in chunks)
    assert upstream.one(nonce).body["stream_options"] == {"include_usage": True}


def test_responses_stream(oai: openai.OpenAI) -> None:
    user, _ = prompt("text")
    events = list(oai.responses.create(model="resp-fast", input=user, stream=True,
                                       store=False))
    t = responses_turn_from_events(events)
    assert t.text == TEXT and events[-1].response.id == RESPONSE_ID


def test_messages_stream(ant: anthropic.Anthropic) -> None:
    user, _ = prompt("tools")
    events = list(ant.messages.create(model="claude-fast", max_tokens=200, stream=True,
                                      messages=[{"role": "user", "content": user}],
                                      tools=[{"name": "get_weather", "input_schema": {
                                          "type": "object"}},
                                          {"name": "get_time", "input_schema": {
                                              "type": "object"}}]))
    t = messages_turn_from_events(events)
    assert [c[1] for c in t.calls] == ["get_weather", "get_time"]
    assert events[0].message.id == "msg_01FakeStream"


def test_stream_helpers(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    user, _ = prompt("thinking")
    with ant.messages.stream(model="claude-fast", max_tokens=3000, messages=[
            {"role": "user", "content": user}],
            thinking={"type": "enabled", "budget_tokens": 1024}) as s:
        final = s.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].signature  # type: ignore[union-attr]
    with oai.chat.completions.stream(model="chat-fast", messages=[
            {"role": "user", "content": prompt("text")[0]}]) as cs:
        assert cs.get_final_completion().choices[0].message.content == TEXT


# --- errors and broken streams --------------------------------------------------------------------


@pytest.mark.parametrize("ingress", ["chat", "responses", "messages"])
def test_upstream_errors_in_the_clients_envelope(ingress: str, oai: openai.OpenAI,
                                                 ant: anthropic.Anthropic) -> None:
    user, _ = prompt("error429")
    if ingress == "messages":
        with pytest.raises(anthropic.RateLimitError) as ae:
            ant.messages.create(model="claude-fast", max_tokens=10,
                                messages=[{"role": "user", "content": user}])
        assert ae.value.response.headers["retry-after"] == "7"
        return
    with pytest.raises(openai.RateLimitError) as oe:
        if ingress == "chat":
            oai.chat.completions.create(model="chat-fast",
                                        messages=[{"role": "user", "content": user}])
        else:
            oai.responses.create(model="resp-fast", input=user, store=False)
    assert oe.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize("model", ["chat-fast", "chat-slow"])
def test_malformed_whole_answer_is_a_502(model: str, oai: openai.OpenAI) -> None:
    user, _ = prompt("malformed")
    with pytest.raises(openai.InternalServerError) as ei:
        oai.chat.completions.create(model=model, messages=[{"role": "user", "content": user}])
    assert ei.value.status_code == 502 and "not valid JSON" in ei.value.message


@pytest.mark.parametrize("scenario", ["cut", "noterminal"])
def test_chat_stream_broken(scenario: str, oai: openai.OpenAI) -> None:
    got = ""
    with pytest.raises(openai.APIError) as ei:
        for chunk in oai.chat.completions.create(
                model="chat-cut", stream=True,
                messages=[{"role": "user", "content": f"scenario:{scenario}"}]):
            for ch in chunk.choices:
                got += ch.delta.content or ""
    assert got == PARTIAL and ei.value.message


@pytest.mark.parametrize("scenario", ["cut", "noterminal"])
def test_responses_stream_broken(scenario: str, oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model="resp-cut", input=f"scenario:{scenario}",
                                       stream=True, store=False))
    check_responses_events(events)
    assert events[-1].type == "response.failed"
    assert events[-1].response.id == "resp_cut01" and events[-1].response.error.message


@pytest.mark.parametrize("scenario", ["cut", "noterminal"])
def test_messages_stream_broken(scenario: str, ant: anthropic.Anthropic) -> None:
    got = ""
    with pytest.raises(anthropic.APIStatusError) as ei:
        for ev in ant.messages.create(model="claude-cut", max_tokens=10, stream=True,
                                      messages=[{"role": "user",
                                                 "content": f"scenario:{scenario}"}]):
            if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
                got += ev.delta.text
    assert got == PARTIAL
    assert isinstance(ei.value.body, dict) and ei.value.body["type"] == "error"


def test_frames_split_anywhere_with_crlf(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    chunks = list(oai.chat.completions.create(model="chat-cut", stream=True, messages=[
        {"role": "user", "content": "scenario:split"}]))
    assert chat_turn_from_chunks(chunks).text == PARTIAL
    events = list(ant.messages.create(model="claude-cut", max_tokens=10, stream=True,
                                      messages=[{"role": "user", "content": "scenario:split"}]))
    assert messages_turn_from_events(events).text == PARTIAL


# --- what keeps the translating path -----------------------------------------------------------


def test_stored_responses_are_translated_and_chain(oai: openai.OpenAI,
                                                   upstream: FakeUpstream) -> None:
    user, nonce = prompt("text")
    r1 = oai.responses.create(model="resp-fast", input=user)  # store defaults to true
    assert r1.id != RESPONSE_ID  # the gateway's own id: it stores the turn
    r2 = oai.responses.create(model="resp-fast", input="and again " + nonce,
                              previous_response_id=r1.id, store=False)
    assert r2.id != RESPONSE_ID  # chained: the gateway expands the history
    assert len(upstream.find(nonce)) == 2
    assert upstream.find(nonce)[1].body["input"][0]["content"][0]["text"] == user


def test_claude_code_system_message_is_translated(ant: anthropic.Anthropic,
                                                  upstream: FakeUpstream) -> None:
    user, nonce = prompt("text")
    m = ant.messages.create(model="claude-fast", max_tokens=20, messages=[
        {"role": "system", "content": "You are Claude Code."},  # type: ignore[list-item]
        {"role": "user", "content": user}])
    assert m.id != "msg_01FakeJson"
    body = upstream.one(nonce).body
    assert all(x["role"] in ("user", "assistant") for x in body["messages"])


# --- the usage log --------------------------------------------------------------------------------


def _usage_lines(tmp: Path, gateway: str) -> list[str]:
    return [ln for ln in log_path(tmp, gateway).read_text().splitlines()
            if "dragoman.usage" in ln]


def test_usage_log_lines(oai: openai.OpenAI, ant: anthropic.Anthropic, gateway: str,
                         tmp: Path) -> None:
    before = len(_usage_lines(tmp, gateway))
    user, _ = prompt("text")
    list(oai.chat.completions.create(model="chat-fast", stream=True,
                                     messages=[{"role": "user", "content": user}]))
    ant.messages.create(model="claude-slow", max_tokens=20,
                        messages=[{"role": "user", "content": user}])
    with pytest.raises(openai.APIError):
        list(oai.chat.completions.create(model="chat-cut", stream=True, messages=[
            {"role": "user", "content": "scenario:cut"}]))
    lines: list[str] = []
    for _ in range(200):  # a line is written once a request has ended, which may be after
        # its client has read the answer
        lines = _usage_lines(tmp, gateway)[before:]
        if len(lines) >= 3:
            break
        time.sleep(0.02)
    fast, slow, cut = (next(ln for ln in lines if f"model={m}" in ln)
                       for m in ("chat-fast", "claude-slow", "chat-cut"))
    assert "stream=true" in fast and "passthrough=true" in fast and "outcome=ok" in fast
    assert f"input_tokens={CHAT_USAGE['prompt_tokens']}" in fast
    assert "passthrough=false" in slow
    want = cost(ANTHROPIC_INPUT + ANTHROPIC_CACHE_READ, ANTHROPIC_OUTPUT, ANTHROPIC_CACHE_READ)
    assert f"cost_usd={want:.10f}".rstrip("0") in slow
    assert "outcome=transport" in cut and "passthrough=true" in cut
    text = log_path(tmp, gateway).read_text()
    assert OPENAI_KEY not in text and ANTHROPIC_KEY not in text and CLIENT_KEY not in text

"""Plain text turns: every ingress dialect, every upstream dialect, and three ways to read
the answer (JSON, raw stream, SDK stream helper). Checks the text, the stop reason, the
usage mapping and what the upstream received (system placement, output cap, model, auth)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes.upstream import ANTHROPIC_KEY, COUNT_TOKENS, OPENAI_KEY, TEXT, FakeUpstream

from .clients import (
    CLIENT_KEY,
    INGRESS,
    MODES,
    SYSTEM,
    UPSTREAM_MODEL,
    UPSTREAM_PATH,
    UPSTREAMS,
    call,
    prompt,
    upstream_max_tokens,
    upstream_view,
)

#: usage each upstream reports for the text scenario, in neutral terms
#: (input = whole prompt incl. cached reads; Anthropic sends 13 + 100 cached).
UP_USAGE = {"chat-up": {"input": 11, "output": 7, "cached": 0},
            "resp-up": {"input": 12, "output": 8, "cached": 0},
            "claude-up": {"input": 113, "output": 9, "cached": 100}}

END_TURN = {"chat": "stop", "responses": "completed", "messages": "end_turn"}
CAP = 50


def cap_kwargs(ingress: str, n: int) -> dict[str, Any]:
    return {"chat": {"max_completion_tokens": n}, "responses": {"max_output_tokens": n},
            "messages": {"max_tokens": n}}[ingress]


def check_upstream_auth(rec: Any, up: str) -> None:
    if up == "claude-up":
        assert rec.headers.get("x-api-key") == ANTHROPIC_KEY
        assert rec.headers.get("anthropic-version") == "2023-06-01"
    else:
        assert rec.headers.get("authorization") == f"Bearer {OPENAI_KEY}"
    assert CLIENT_KEY not in json.dumps(rec.headers), "the client's key leaked upstream"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_text(ingress: str, up: str, mode: str, oai: openai.OpenAI, ant: anthropic.Anthropic,
              upstream: FakeUpstream) -> None:
    user, nonce = prompt("text")
    t = call(oai, ant, ingress, up, mode, user, **cap_kwargs(ingress, CAP))

    assert t.text == TEXT
    assert t.stop == END_TURN[ingress]
    want = UP_USAGE[up]
    assert {k: t.usage.get(k) for k in want} == want, t.usage
    if ingress == "messages":
        assert t.usage["raw_input"] == want["input"] - want["cached"]
    elif "total" in t.usage:
        assert t.usage["total"] == want["input"] + want["output"]

    rec = upstream.one(nonce)
    assert rec.path == UPSTREAM_PATH[up]
    assert rec.body["model"] == UPSTREAM_MODEL[up]
    assert bool(rec.body.get("stream")) is (mode != "json")
    check_upstream_auth(rec, up)
    system, turns = upstream_view(rec)
    assert system == SYSTEM
    assert turns == [("user", [("text", user)])]
    assert upstream_max_tokens(rec) == CAP


@pytest.mark.parametrize("up", UPSTREAMS)
def test_chat_stream_without_include_usage(up: str, oai: openai.OpenAI,
                                           upstream: FakeUpstream) -> None:
    """A Chat client that does not ask for usage gets none streamed, whatever the
    upstream (and the chunks never carry a usage object)."""
    user, _ = prompt("text")
    chunks = list(oai.chat.completions.create(
        model=up, messages=[{"role": "user", "content": user}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices and chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("up", UPSTREAMS)
def test_anthropic_beta_and_version_forwarding(up: str, ant: anthropic.Anthropic,
                                               upstream: FakeUpstream) -> None:
    """``anthropic-beta`` reaches an Anthropic upstream unchanged; the upstream's
    ``anthropic-version`` is the gateway's, whatever version the client SDK sends."""
    user, nonce = prompt("text")
    beta = "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"
    m = ant.messages.create(model=up, max_tokens=20, messages=[{"role": "user",
                                                                "content": user}],
                            extra_headers={"anthropic-beta": beta})
    assert m.content[0].type == "text" and m.content[0].text == TEXT
    rec = upstream.one(nonce)
    if up == "claude-up":
        assert rec.headers.get("anthropic-beta") == beta
        assert rec.headers.get("anthropic-version") == "2023-06-01"
    else:
        assert "anthropic-beta" not in rec.headers
        assert "anthropic-version" not in rec.headers


def test_count_tokens_uses_anthropic_upstream(ant: anthropic.Anthropic,
                                              upstream: FakeUpstream) -> None:
    user, nonce = prompt("text")
    n = ant.messages.count_tokens(model="claude-up", system=SYSTEM,
                                  messages=[{"role": "user", "content": user}])
    assert n.input_tokens == COUNT_TOKENS
    rec = upstream.one(nonce)
    assert rec.path == "/v1/messages/count_tokens"
    assert rec.body["model"] == UPSTREAM_MODEL["claude-up"]
    assert "max_tokens" not in rec.body and "stream" not in rec.body
    assert upstream_view(rec) == (SYSTEM, [("user", [("text", user)])])


@pytest.mark.parametrize("up", ["chat-up", "resp-up"])
def test_count_tokens_estimates_for_openai_upstreams(up: str, ant: anthropic.Anthropic,
                                                     upstream: FakeUpstream) -> None:
    user, nonce = prompt("text")
    n = ant.messages.count_tokens(model=up, messages=[{"role": "user", "content": user}])
    assert 0 < n.input_tokens < 200
    assert upstream.find(nonce) == [], "OpenAI upstreams have no counter to ask"

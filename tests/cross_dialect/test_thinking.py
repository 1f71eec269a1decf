"""Reasoning across dialects: the request's effort/budget reaches each upstream in its own
terms, the reasoning text reaches every client, and opaque proofs (Anthropic signatures,
Responses encrypted_content) go back only to the family that made them — byte-identical."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes.upstream import (
    ANTHROPIC_SIGNATURE,
    ENCRYPTED_REASONING,
    RESP_REASONING_ID,
    THINK_ANSWER,
    THINKING,
    FakeUpstream,
)

from .clients import INGRESS, UPSTREAMS, call, prompt, upstream_view

BUDGET, CAP = 2048, 4096  # effort "low" ↔ budget 2048 (mapping.md §5)


def reasoning_kwargs(ingress: str) -> dict[str, Any]:
    if ingress == "chat":
        return {"reasoning_effort": "low", "max_completion_tokens": CAP}
    if ingress == "responses":
        return {"reasoning": {"effort": "low", "summary": "auto"}, "store": False,
                "include": ["reasoning.encrypted_content"], "max_output_tokens": CAP}
    return {"thinking": {"type": "enabled", "budget_tokens": BUDGET}, "max_tokens": CAP}


def expected_signature(ingress: str, up: str) -> str | None:
    """What the client may see as the opaque proof: only its own family's."""
    if ingress == "messages":
        return ANTHROPIC_SIGNATURE if up == "claude-up" else ""
    if ingress == "responses":
        return ENCRYPTED_REASONING if up == "resp-up" else None
    return None


@pytest.mark.parametrize("mode", ["json", "stream", "helper"])
@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_thinking(ingress: str, up: str, mode: str, oai: openai.OpenAI,
                  ant: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    user, nonce = prompt("thinking")
    t = call(oai, ant, ingress, up, mode, user, **reasoning_kwargs(ingress))
    assert t.text == THINK_ANSWER
    assert t.thinking == THINKING
    assert t.signature == expected_signature(ingress, up)

    body = upstream.one(nonce).body
    if up == "claude-up":
        assert body["thinking"] == {"type": "enabled", "budget_tokens": BUDGET}
        assert body["max_tokens"] == CAP
    elif up == "chat-up":
        assert body["reasoning_effort"] == "low"
    else:
        assert body["reasoning"]["effort"] == "low"


@pytest.mark.parametrize("mode", ["json", "stream"])
def test_anthropic_signature_replayed_byte_identical(mode: str, ant: anthropic.Anthropic,
                                                     oai: openai.OpenAI,
                                                     upstream: FakeUpstream) -> None:
    user, nonce = prompt("thinking")
    kw = reasoning_kwargs("messages")
    t1 = call(oai, ant, "messages", "claude-up", mode, user, **kw)
    assert t1.signature == ANTHROPIC_SIGNATURE
    follow, nonce2 = prompt("thinking")
    history = [{"role": "user", "content": user}, *t1.history]
    t2 = call(oai, ant, "messages", "claude-up", mode, follow, history=history, **kw)
    assert t2.text == THINK_ANSWER

    rec = upstream.one(nonce2)
    assistant = rec.body["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["content"][0] == {"type": "thinking", "thinking": THINKING,
                                       "signature": ANTHROPIC_SIGNATURE}
    assert json.dumps(ANTHROPIC_SIGNATURE).encode() in rec.raw
    assert assistant["content"][1]["type"] == "text"
    assert assistant["content"][1]["text"] == THINK_ANSWER
    assert len(upstream.find(nonce)) == 2  # turn 1 and the replay


@pytest.mark.parametrize("mode", ["json", "stream"])
def test_responses_encrypted_reasoning_replayed(mode: str, ant: anthropic.Anthropic,
                                                oai: openai.OpenAI,
                                                upstream: FakeUpstream) -> None:
    user, _ = prompt("thinking")
    kw = reasoning_kwargs("responses")
    t1 = call(oai, ant, "responses", "resp-up", mode, user, **kw)
    assert t1.signature == ENCRYPTED_REASONING
    follow, nonce2 = prompt("thinking")
    history = [{"role": "user", "content": user}, *t1.history]
    t2 = call(oai, ant, "responses", "resp-up", mode, follow, history=history, **kw)
    assert t2.text == THINK_ANSWER

    rec = upstream.one(nonce2)
    reasoning = [it for it in rec.body["input"] if it.get("type") == "reasoning"]
    assert len(reasoning) == 1
    assert reasoning[0]["encrypted_content"] == ENCRYPTED_REASONING
    assert reasoning[0].get("id") in (None, RESP_REASONING_ID)
    _, turns = upstream_view(rec)
    assert turns[1][0] == "assistant"
    assert turns[1][1][0] == ("thinking", THINKING, ENCRYPTED_REASONING)
    assert turns[1][1][1] == ("text", THINK_ANSWER)


@pytest.mark.parametrize("target", ["chat-up", "resp-up"])
def test_anthropic_signature_not_sent_to_other_families(target: str, ant: anthropic.Anthropic,
                                                        oai: openai.OpenAI,
                                                        upstream: FakeUpstream) -> None:
    user, _ = prompt("thinking")
    kw = reasoning_kwargs("messages")
    t1 = call(oai, ant, "messages", "claude-up", "json", user, **kw)
    assert t1.signature == ANTHROPIC_SIGNATURE
    follow, nonce2 = prompt("text")
    history = [{"role": "user", "content": user}, *t1.history]
    t2 = call(oai, ant, "messages", target, "json", follow, history=history, **kw)
    assert t2.text
    rec = upstream.one(nonce2)
    assert ANTHROPIC_SIGNATURE.encode() not in rec.raw
    _, turns = upstream_view(rec)
    assert [r for r, _ in turns] == ["user", "assistant", "user"]
    assert ("text", THINK_ANSWER) in turns[1][1]


@pytest.mark.parametrize("target", ["chat-up", "claude-up"])
def test_encrypted_reasoning_not_sent_to_other_families(target: str, ant: anthropic.Anthropic,
                                                        oai: openai.OpenAI,
                                                        upstream: FakeUpstream) -> None:
    user, _ = prompt("thinking")
    kw = reasoning_kwargs("responses")
    t1 = call(oai, ant, "responses", "resp-up", "json", user, **kw)
    assert t1.signature == ENCRYPTED_REASONING
    follow, nonce2 = prompt("text")
    history = [{"role": "user", "content": user}, *t1.history]
    t2 = call(oai, ant, "responses", target, "json", follow, history=history, **kw)
    assert t2.text
    rec = upstream.one(nonce2)
    assert ENCRYPTED_REASONING.encode() not in rec.raw
    _, turns = upstream_view(rec)
    assert [r for r, _ in turns] == ["user", "assistant", "user"]
    assert ("text", THINK_ANSWER) in turns[1][1]
    # an Anthropic upstream must never get an unsigned thinking block (400 in the real API)
    assert all(i[0] != "thinking" for i in turns[1][1])

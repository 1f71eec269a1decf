"""Failover to another deployment of the route, and fallbacks to other routes, for every
error kind that triggers them; what does not trigger them reaches the client as is.

Routes whose failing deployment has weight 1 and the healthy one weight 0 make the order
deterministic: the failing one is always tried first (weight 0 only takes what is left).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes.chaos import Behaviour, ChaosUpstream, ContextTooLong, Fail, Stall, answer_text

from .support import HI, Config, ant_dep, dead_dep, oai_dep, seen, unreachable_dep


@dataclass(frozen=True)
class Trigger:
    """A deployment that fails with one error kind: how it is configured, and what the fake
    does for it (None: the failure happens before the fake, as with a closed port)."""

    deployment: Callable[[ChaosUpstream, str], Config]
    behaviour: Behaviour | None


TRIGGERS = {
    "overloaded-503": Trigger(oai_dep, Fail(503)),
    "overloaded-529": Trigger(ant_dep, Fail(529)),
    "upstream-500": Trigger(oai_dep, Fail(500)),
    "rate-limited-429": Trigger(oai_dep, Fail(429)),
    "timeout": Trigger(lambda f, m: oai_dep(f, m, timeouts={"first_byte": 0.5}), Stall()),
    "transport": Trigger(lambda f, m: dead_dep(m), None),
    "connect-timeout": Trigger(lambda f, m: unreachable_dep(m), None),
}


@pytest.fixture(scope="module")
def gateway(chaos: ChaosUpstream, gateways: Callable[[Config], str]) -> str:
    models: list[Config] = [{"name": "target", **ant_dep(chaos, "target-up")}]
    for name, t in TRIGGERS.items():
        models.append({"name": f"in-{name}", "deployments": [
            t.deployment(chaos, f"in-{name}-bad") | {"weight": 1},
            oai_dep(chaos, f"in-{name}-good", weight=0)]})
        models.append({"name": f"fb-{name}", **t.deployment(chaos, f"fb-{name}-bad"),
                       "fallbacks": ["target"]})

    def ctx(up: str, tokens: int, **extra: Any) -> Config:
        return oai_dep(chaos, up, capabilities={"max_context_tokens": tokens}, **extra)
    models += [
        {"name": "ctx", **ant_dep(chaos, "ctx-up", capabilities={"max_context_tokens": 8000}),
         "fallbacks": ["ctx-smaller", "ctx-big"]},
        {"name": "ctx-smaller", **ctx("ctx-smaller-up", 4000)},
        {"name": "ctx-big", **ctx("ctx-big-up", 200_000)},
        {"name": "ctx-nowhere", **ctx("ctx-nowhere-up", 8000), "fallbacks": ["ctx-smaller"]},
        {"name": "bad-request", "fallbacks": ["target"], "deployments": [
            oai_dep(chaos, "br-a", weight=1), oai_dep(chaos, "br-b", weight=0)]},
        {"name": "only-rl", **oai_dep(chaos, "only-rl-up"), "fallbacks": ["target"],
         "fallback_on": ["rate_limited"]},
        {"name": "cool", "deployments": [
            oai_dep(chaos, "cool-a", weight=1), oai_dep(chaos, "cool-b", weight=0)]},
    ]
    return gateways({"models": models})


def chat(oai: openai.OpenAI, model: str, stream: bool = False) -> str:
    if not stream:
        text = oai.chat.completions.create(model=model, messages=HI).choices[0].message.content
        assert text is not None
        return text
    with oai.chat.completions.create(model=model, messages=HI, stream=True) as s:
        return "".join(c.choices[0].delta.content or "" for c in s if c.choices)


def script(fake: ChaosUpstream, model: str, trigger: str) -> list[str]:
    """Make ``model`` fail as ``trigger``; the fake requests that failure leaves."""
    behaviour = TRIGGERS[trigger].behaviour
    if behaviour is None:
        return []
    fake.default(model, behaviour)
    return [model]


def check_failed_attempt(fake: ChaosUpstream, bad: str, then: str, trigger: str) -> None:
    if trigger == "timeout":
        first, second = fake.requests(bad)[0], fake.requests(then)[0]
        # given up after first_byte (0.5 s), and the stalled request was abandoned
        assert second.received_at - first.received_at >= 0.3
        fake.wait_for(lambda: first.outcome == "cancelled", what="stalled request closed")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("trigger", list(TRIGGERS))
def test_failover_within_the_route(fake: ChaosUpstream, oai: openai.OpenAI, trigger: str,
                                   stream: bool) -> None:
    bad, good = f"in-{trigger}-bad", f"in-{trigger}-good"
    failed = script(fake, bad, trigger)
    began = time.monotonic()
    assert chat(oai, f"in-{trigger}", stream) == answer_text(good)
    if trigger == "connect-timeout":  # waited out the 0.5 s connect timeout, then failed over
        assert time.monotonic() - began >= 0.45
    assert seen(fake) == [*failed, good]
    assert all(r.stream is stream for r in fake.requests())
    check_failed_attempt(fake, bad, good, trigger)


@pytest.mark.parametrize("trigger", list(TRIGGERS))
def test_fallback_to_another_route(fake: ChaosUpstream, ant: anthropic.Anthropic,
                                   trigger: str) -> None:
    bad = f"fb-{trigger}-bad"
    failed = script(fake, bad, trigger)
    msg = ant.messages.create(model=f"fb-{trigger}", max_tokens=20, messages=HI)
    assert msg.content[0].type == "text" and msg.content[0].text == answer_text("target-up")
    assert seen(fake) == [*failed, "target-up"]
    check_failed_attempt(fake, bad, "target-up", trigger)


def test_context_length_goes_to_a_larger_context(fake: ChaosUpstream,
                                                 oai: openai.OpenAI) -> None:
    fake.default("ctx-up", ContextTooLong())
    assert chat(oai, "ctx") == answer_text("ctx-big-up")
    # ctx-smaller (4000 < 8000 tokens) is listed first but cannot help: skipped
    assert seen(fake) == ["ctx-up", "ctx-big-up"]


def test_context_length_without_a_larger_fallback(fake: ChaosUpstream,
                                                  oai: openai.OpenAI) -> None:
    fake.default("ctx-nowhere-up", ContextTooLong())
    with pytest.raises(openai.BadRequestError) as e:
        chat(oai, "ctx-nowhere")
    assert e.value.status_code == 400
    assert e.value.code == "context_length_exceeded"
    assert seen(fake) == ["ctx-nowhere-up"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_invalid_request_is_not_failed_over(fake: ChaosUpstream, oai: openai.OpenAI,
                                            stream: bool) -> None:
    fake.default("br-a", Fail(400, message="max_tokens is too large"))
    with pytest.raises(openai.BadRequestError) as e:
        chat(oai, "bad-request", stream)
    assert e.value.status_code == 400 and e.value.type == "invalid_request_error"
    assert "max_tokens is too large" in e.value.message
    # neither the route's other deployment nor the fallback was asked
    assert seen(fake) == ["br-a"]


def test_fallback_on_restricts_the_kinds(fake: ChaosUpstream, oai: openai.OpenAI) -> None:
    fake.script("only-rl-up", [Fail(503), Fail(429)])
    with pytest.raises(openai.InternalServerError) as e:  # overloaded: not in fallback_on
        chat(oai, "only-rl")
    assert e.value.status_code == 503 and e.value.type == "server_error"
    assert seen(fake) == ["only-rl-up"]
    assert chat(oai, "only-rl") == answer_text("target-up")  # rate_limited: falls back
    assert seen(fake) == ["only-rl-up", "only-rl-up", "target-up"]


def test_a_rate_limited_deployment_cools_down(fake: ChaosUpstream, oai: openai.OpenAI) -> None:
    fake.script("cool-a", [Fail(429, retry_after=30)])
    assert chat(oai, "cool") == answer_text("cool-b")
    # cool-a said "not for 30 s": it is tried last (weight alone would put it first)
    assert [chat(oai, "cool") for _ in range(3)] == [answer_text("cool-b")] * 3
    assert seen(fake) == ["cool-a", "cool-b", "cool-b", "cool-b", "cool-b"]

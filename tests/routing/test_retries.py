"""Retries of a single-deployment route: after a back-off that honours the upstream's
``retry-after``, never one the route does not allow, and for streams only before anything
reached the client (see test_midstream for after)."""

from __future__ import annotations

from collections.abc import Callable

import anthropic
import openai
import pytest

from tests.fakes.chaos import ChaosUpstream, Fail, Ok, Stall, answer_text

from .support import HI, Config, oai_dep, seen

RETRY = {"retries": 1, "backoff": 0.05, "max_retry_after": 2}


@pytest.fixture(scope="module")
def gateway(chaos: ChaosUpstream, gateways: Callable[[Config], str]) -> str:
    return gateways({"models": [
        {"name": "once", **oai_dep(chaos, "once-up"), "retry": RETRY},
        {"name": "never", **oai_dep(chaos, "never-up")},  # retries: 0 (the default)
        {"name": "slow-start", **oai_dep(chaos, "slow-start-up", timeouts={"first_byte": 0.5}),
         "retry": RETRY},
    ]})


def test_retry_waits_for_retry_after(fake: ChaosUpstream, oai: openai.OpenAI) -> None:
    fake.script("once-up", [Fail(429, retry_after=0.6), Ok()])
    text = oai.chat.completions.create(model="once", messages=HI).choices[0].message.content
    assert text == answer_text("once-up")
    first, second = fake.requests("once-up")
    assert second.received_at - first.received_at >= 0.59  # not before retry-after
    assert fake.pending("once-up") == 0


def test_retry_after_beyond_the_limit_is_not_waited_for(fake: ChaosUpstream,
                                                        oai: openai.OpenAI,
                                                        ant: anthropic.Anthropic) -> None:
    fake.default("once-up", Fail(429, retry_after=5))  # max_retry_after: 2
    # a gateway that waited 5 s would hit this client timeout
    with pytest.raises(openai.RateLimitError) as e:
        oai.with_options(timeout=4).chat.completions.create(model="once", messages=HI)
    assert e.value.status_code == 429 and e.value.code == "rate_limit_exceeded"
    assert e.value.response.headers["retry-after"] == "5"
    assert e.value.response.headers["retry-after-ms"] == "5000"
    assert seen(fake) == ["once-up"]

    with pytest.raises(anthropic.RateLimitError) as a:
        ant.with_options(timeout=4).messages.create(model="once", max_tokens=10, messages=HI)
    assert a.value.status_code == 429
    assert a.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert a.value.response.headers["retry-after"] == "5"
    assert seen(fake) == ["once-up", "once-up"]


def test_no_retries_means_one_request(fake: ChaosUpstream, oai: openai.OpenAI) -> None:
    fake.script("never-up", [Fail(429, retry_after=0.1), Ok()])
    with pytest.raises(openai.RateLimitError) as e:
        oai.chat.completions.create(model="never", messages=HI)
    assert e.value.response.headers["retry-after"] == "1"  # whole seconds, at least 1
    assert e.value.response.headers["retry-after-ms"] == "100"
    fake.script("never-up", [Fail(503), Ok()])
    with pytest.raises(openai.InternalServerError) as s:
        oai.chat.completions.create(model="never", messages=HI, stream=True)
    assert s.value.status_code == 503
    assert seen(fake) == ["never-up", "never-up"] and fake.pending("never-up") == 1


def test_retries_are_bounded(fake: ChaosUpstream, oai: openai.OpenAI) -> None:
    fake.default("once-up", Fail(500, message="boom"))
    with pytest.raises(openai.InternalServerError) as e:
        oai.chat.completions.create(model="once", messages=HI)
    assert e.value.status_code == 502 and "boom" in e.value.message
    assert seen(fake) == ["once-up", "once-up"]  # the request and one retry


def test_stream_retried_before_the_first_byte(fake: ChaosUpstream, oai: openai.OpenAI,
                                              ant: anthropic.Anthropic) -> None:
    fake.script("once-up", [Fail(500), Ok(chunks=4)])
    with oai.chat.completions.create(model="once", messages=HI, stream=True) as s:
        text = "".join(c.choices[0].delta.content or "" for c in s if c.choices)
    assert text == answer_text("once-up", Ok(chunks=4))
    assert [r.stream for r in fake.requests()] == [True, True]

    fake.script("once-up", [Fail(503), Ok()])
    with ant.messages.stream(model="once", max_tokens=10, messages=HI) as m:
        assert "".join(m.text_stream) == answer_text("once-up")
    assert fake.count("once-up") == 4


def test_stream_retried_after_a_first_byte_timeout(fake: ChaosUpstream,
                                                   oai: openai.OpenAI) -> None:
    fake.script("slow-start-up", [Stall(), Ok()])
    with oai.chat.completions.create(model="slow-start", messages=HI, stream=True) as s:
        text = "".join(c.choices[0].delta.content or "" for c in s if c.choices)
    assert text == answer_text("slow-start-up")
    stalled, answered = fake.requests("slow-start-up")
    assert answered.received_at - stalled.received_at >= 0.3  # first_byte: 0.5
    fake.wait_for(lambda: stalled.outcome == "cancelled", what="the stalled request closed")
    assert answered.outcome == "completed"

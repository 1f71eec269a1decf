"""Circuit breakers per deployment: an open breaker takes its deployment out of rotation,
a probe after the cool-down brings it back, and a route with every deployment open (and
no fallback) answers ``circuit_open`` in the client's dialect, which ``/readyz`` reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.fakes.chaos import ChaosUpstream, Fail, Ok, answer_text

from .support import CLIENT_TIMEOUT, HI, Config, oai_dep, poll, seen

COOLDOWN = 1.0


@pytest.fixture(scope="module")
def gateway(chaos: ChaosUpstream, gateways: Callable[[Config], str]) -> str:
    quick = {"failures": 2, "cooldown": COOLDOWN}
    stuck = {"failures": 1, "cooldown": 60}
    return gateways({"models": [
        # weight 0 on cb-b: traffic goes to cb-a whenever its breaker lets it
        {"name": "cb", "deployments": [oai_dep(chaos, "cb-a", weight=1, breaker=quick),
                                       oai_dep(chaos, "cb-b", weight=0, breaker=quick)]},
        {"name": "all-open", "deployments": [oai_dep(chaos, "ao-a", breaker=stuck),
                                             oai_dep(chaos, "ao-b", breaker=stuck)]},
        {"name": "healthy", **oai_dep(chaos, "healthy-up")},
    ]})


@pytest.fixture(scope="module")
def lonely(chaos: ChaosUpstream, gateways: Callable[[Config], str]) -> str:
    """A gateway whose only model is one deployment with a breaker."""
    return gateways({"models": [
        {"name": "solo", **oai_dep(chaos, "solo-up", breaker={"failures": 1,
                                                               "cooldown": 60})}]})


def ask(oai: openai.OpenAI, model: str) -> str:
    text = oai.chat.completions.create(model=model, messages=HI).choices[0].message.content
    assert text is not None
    return text


def readyz(base: str) -> tuple[int, Any]:
    # a key (any: this gateway has no auth) asks for the detailed view, per model name
    r = httpx.get(base + "/readyz", timeout=CLIENT_TIMEOUT, headers={"x-api-key": "k"})
    return r.status_code, r.json()


def test_open_breaker_skips_its_deployment_until_a_probe(fake: ChaosUpstream,
                                                         oai: openai.OpenAI) -> None:
    fake.default("cb-a", Fail(500))
    for _ in range(2):  # each fails over to cb-b; the second failure opens cb-a's breaker
        assert ask(oai, "cb") == answer_text("cb-b")
    assert seen(fake) == ["cb-a", "cb-b", "cb-a", "cb-b"]
    opened_at = fake.requests("cb-a")[-1].received_at

    fake.default("cb-a", Ok())
    for _ in range(3):  # cb-a is healthy again, but its breaker is open: not even asked
        assert ask(oai, "cb") == answer_text("cb-b")
    assert fake.count("cb-a") == 2

    # after the cool-down, the next request is the probe; its success closes the breaker
    poll(lambda: ask(oai, "cb") == answer_text("cb-a"), 5 * COOLDOWN, "a probe to cb-a")
    probe = fake.requests("cb-a")[2]
    assert probe.received_at - opened_at >= COOLDOWN * 0.95
    assert [ask(oai, "cb") for _ in range(3)] == [answer_text("cb-a")] * 3
    assert fake.count("cb-a") == 6


def test_every_deployment_open_answers_circuit_open(fake: ChaosUpstream, gateway: str,
                                                    oai: openai.OpenAI,
                                                    ant: anthropic.Anthropic) -> None:
    status, body = readyz(gateway)
    assert status == 200 and body["checks"]["models"]["all-open"] == "ok"
    fake.default("ao-a", Fail(500))
    fake.default("ao-b", Fail(500))
    with pytest.raises(openai.InternalServerError) as first:  # both fail: the last error
        ask(oai, "all-open")
    assert first.value.status_code == 502
    assert sorted(seen(fake)) == ["ao-a", "ao-b"]  # both breakers open now (failures: 1)

    with pytest.raises(openai.InternalServerError) as e:
        ask(oai, "all-open")
    assert e.value.status_code == 503 and e.value.type == "server_error"
    assert "circuit open" in e.value.message
    assert 1 <= int(e.value.response.headers["retry-after"]) <= 60

    with pytest.raises(openai.InternalServerError) as r:
        oai.responses.create(model="all-open", input="hi", store=False)
    assert r.value.status_code == 503 and r.value.type == "server_error"

    with pytest.raises(anthropic.InternalServerError) as a:
        ant.messages.create(model="all-open", max_tokens=10, messages=HI, stream=True)
    assert a.value.status_code == 529
    assert a.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert "circuit open" in a.value.body["error"]["message"]  # type: ignore[index]
    assert fake.count() == 2  # none of these reached the upstream

    status, body = readyz(gateway)  # other models are up: still ready
    assert status == 200 and body["status"] == "ready"
    assert body["checks"]["models"] == {"cb": "ok", "all-open": "circuit_open",
                                        "healthy": "ok"}
    assert ask(oai, "healthy") == answer_text("healthy-up")


def test_readyz_unavailable_when_no_model_is_up(fake: ChaosUpstream, lonely: str) -> None:
    assert readyz(lonely) == (200, {"status": "ready", "checks": {
        "sessions": "ok", "models": {"solo": "ok"}}})
    fake.default("solo-up", Fail(503))
    with openai.OpenAI(base_url=lonely + "/v1", api_key="k", max_retries=0,
                       timeout=CLIENT_TIMEOUT) as oai:
        with pytest.raises(openai.InternalServerError) as first:
            ask(oai, "solo")
        assert first.value.status_code == 503  # the upstream's own overload
        with pytest.raises(openai.InternalServerError) as e:
            ask(oai, "solo")
        assert e.value.status_code == 503 and "circuit open" in e.value.message
    assert seen(fake) == ["solo-up"]
    assert readyz(lonely) == (503, {"status": "unavailable", "checks": {
        "sessions": "ok", "models": {"solo": "circuit_open"}}})

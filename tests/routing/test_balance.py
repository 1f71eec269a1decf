"""Load balancing over a route's deployments, seen from both ends: which upstream model
answered the client (the fake's text is ``chaos:<model>``) and which the fake received."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from tests.fakes.chaos import ChaosUpstream, Ok, Stall

from .support import HI, Config, oai_dep, poll, seen


@pytest.fixture(scope="module")
def gateway(chaos: ChaosUpstream, gateways: Callable[[Config], str]) -> str:
    def route(name: str, balance: str, *deps: tuple[str, float]) -> Config:
        return {"name": name, "balance": balance,
                "deployments": [oai_dep(chaos, m, weight=w) for m, w in deps]}
    return gateways({"models": [
        route("w-zero", "weighted", ("wz-one", 1), ("wz-zero", 0)),
        route("w-31", "weighted", ("w31-heavy", 3), ("w31-light", 1)),
        # weight 0 on lo-b: a tie always goes to lo-a, so what moves traffic is load
        route("lo", "least_outstanding", ("lo-a", 1), ("lo-b", 0)),
        route("lat", "latency", ("lat-slow", 1), ("lat-fast", 1)),
    ]})


def ask(oai: openai.OpenAI, model: str) -> str:
    """One non-streamed request; the upstream model that answered (from the text)."""
    text = oai.chat.completions.create(model=model, messages=HI).choices[0].message.content
    assert text is not None and text.startswith("chaos:")
    return text.removeprefix("chaos:")


def test_weight_zero_gets_nothing(fake: ChaosUpstream, oai: openai.OpenAI) -> None:
    answered = [ask(oai, "w-zero") for _ in range(20)]
    assert answered == ["wz-one"] * 20
    assert fake.count("wz-one") == 20 and fake.count("wz-zero") == 0


def test_weights_three_to_one(fake: ChaosUpstream, oai: openai.OpenAI) -> None:
    n = 80
    with ThreadPoolExecutor(8) as pool:
        answered = Counter(pool.map(lambda _: ask(oai, "w-31"), range(n)))
    assert set(answered) == {"w31-heavy", "w31-light"}
    assert Counter(seen(fake)) == answered  # one upstream request per client request
    # expected share 0.75, standard deviation ~0.05 over 80: a band of over 3.5 sigma
    assert 0.55 <= answered["w31-heavy"] / n <= 0.92, answered


def test_least_outstanding_sends_to_the_less_loaded(fake: ChaosUpstream,
                                                    oai: openai.OpenAI) -> None:
    assert ask(oai, "lo") == "lo-a"  # idle: a tie, decided by weight
    fake.default("lo-a", Stall(after_chunks=1))
    fake.default("lo-b", Stall(after_chunks=1))
    held = []
    try:
        # three streams held open, one after the other: each goes where fewer are in flight
        for i in range(3):
            stream = oai.chat.completions.create(model="lo", messages=HI, stream=True)
            held.append(stream)
            # its first chunk came from upstream: the request is there, held (the stall
            # comes after a delta)
            first = next(iter(stream))
            assert first.choices[0].delta.role == "assistant"
            assert fake.count() == i + 2
        assert seen(fake) == ["lo-a", "lo-a", "lo-b", "lo-a"]
        # lo-a has two in flight, lo-b one: new requests go to lo-b (and finish there)
        fake.default("lo-b", Ok())
        assert [ask(oai, "lo") for _ in range(4)] == ["lo-b"] * 4
        assert fake.count("lo-a") == 3 and fake.count("lo-b") == 5
    finally:
        for stream in held:
            stream.close()
    fake.default("lo-a", Ok())
    fake.wait_for(lambda: sum(r.outcome == "cancelled" for r in fake.requests()) == 3,
                  what="the held upstream requests cancelled")
    # nothing in flight any more: the tie goes back to lo-a
    poll(lambda: ask(oai, "lo") == "lo-a", 5, "a request on lo-a again")


def test_latency_prefers_the_faster(fake: ChaosUpstream, oai: openai.OpenAI) -> None:
    fake.default("lat-slow", Ok(latency=0.3))
    first_two = {ask(oai, "lat"), ask(oai, "lat")}
    assert first_two == {"lat-slow", "lat-fast"}  # each measured once before any choice
    answered = [ask(oai, "lat") for _ in range(10)]
    assert answered == ["lat-fast"] * 10
    assert fake.count("lat-slow") == 1 and fake.count("lat-fast") == 11
    assert fake.requests("lat-slow")[0].outcome == "completed"

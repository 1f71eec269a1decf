"""Limits shared through one real Redis by two ``dragoman serve`` processes: one limit,
enforced exactly, whichever process a request reaches; and what a gateway does when its
Redis goes away (``/readyz`` and generation requests).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from dragoman.core import new_id
from tests.gateway_proc import log_path, run_gateway
from tests.infra.redis import PASSWORD, RedisMissing, running_redis

from .gateway_clients import (
    PRICES,
    ant,
    check_budget_refusal,
    check_rate_limited,
    cost,
    estimate,
    fire_chat,
    oai,
)

OK = "::reply ok"
RPM = 10
# As in test_gateway_limits: answers cut at max_tokens cost exactly their reservation.
RACE = "::reply " + " ".join(f"r{i}" for i in range(10))
RACE_MAX = 4
RACE_BUDGET = 3.5 * cost(estimate(RACE), RACE_MAX)


def key(tenant: str) -> str:
    return f"key-{tenant}"


def config(redis_url: str, prefix: str) -> dict[str, Any]:
    tenants = ["seq", "conc", "race"]
    return {
        "models": [{"name": "e", "provider": "echo", "capabilities": PRICES}],
        "limits": {"backend": "redis", "redis_url": redis_url, "redis_prefix": prefix,
                   "tenants": {"seq": {"rpm": RPM}, "conc": {"rpm": RPM}},
                   "budgets": {"race": {"usd": RACE_BUDGET, "window": "1d"}}},
        "auth": {"type": "static", "tokens": [{"token": key(t), "tenant": t}
                                              for t in tenants]},
    }


@pytest.fixture(scope="module")
def pair(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two gateway processes on the same Redis and key prefix (a fresh prefix per run, so
    counters of an earlier run never count)."""
    cfg = config(redis_url, new_id("gw"))
    with ExitStack() as stack:
        yield [stack.enter_context(run_gateway(cfg, tmp_path_factory.mktemp("shared")))
               for _ in range(2)]


def readyz(base: str) -> tuple[int, dict[str, Any]]:
    try:
        # with a valid key: the detailed view, per model name
        request = urllib.request.Request(base + "/readyz",
                                         headers={"Authorization": f"Bearer {key('seq')}"})
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def chat(client: openai.OpenAI, **kw: Any) -> Any:
    return client.chat.completions.create(
        model="e", max_tokens=20, messages=[{"role": "user", "content": OK}], **kw)


def test_two_processes_enforce_one_rpm_limit_exactly(pair: list[str]) -> None:
    for base in pair:
        assert readyz(base) == (200, {"status": "ready", "checks": {
            "sessions": "ok", "limits": "ok", "models": {"e": "ok"}}})
    clients = [oai(base, key("seq")) for base in pair]
    for i in range(RPM):  # alternated: each process sees only half of them
        assert chat(clients[i % 2]).choices[0].message.content == "ok"
    # The N+1th is refused whichever process it reaches, streamed or not, in any dialect.
    for client in clients:
        with pytest.raises(openai.RateLimitError) as e:
            chat(client)
        assert f"{RPM} requests per 1m" in check_rate_limited(e.value)
        with pytest.raises(openai.RateLimitError) as e2:
            chat(client, stream=True)
        check_rate_limited(e2.value)
    for base in pair:
        with pytest.raises(anthropic.RateLimitError) as e3:
            ant(base, key("seq")).messages.create(
                model="e", max_tokens=20, messages=[{"role": "user", "content": OK}])
        assert "tenant 'seq'" in check_rate_limited(e3.value, True)


async def test_two_processes_enforce_one_rpm_limit_under_concurrency(pair: list[str]) -> None:
    served, refused = await fire_chat(pair, key("conc"), 30, model="e", max_tokens=20,
                                      messages=[{"role": "user", "content": OK}])
    assert len(served) == RPM
    assert len(refused) == 30 - RPM
    for e in refused:
        check_rate_limited(e)


async def test_two_processes_cannot_overspend_one_budget(pair: list[str]) -> None:
    reservation = cost(estimate(RACE), RACE_MAX)
    served, refused = await fire_chat(pair, key("race"), 30, model="e", max_tokens=RACE_MAX,
                                      messages=[{"role": "user", "content": RACE}])
    assert len(served) == RACE_BUDGET // reservation == 3
    assert sum(served) <= RACE_BUDGET
    assert len(refused) == 27
    for e in refused:
        check_budget_refusal(e)


def test_redis_going_away_makes_the_gateway_unready_and_refuse_clearly(tmp_path: Path) -> None:
    """A limits store that is down means limits cannot be enforced: the gateway says so on
    /readyz (so a load balancer stops sending traffic) and fails requests at once with a
    503 (Anthropic 529) in the caller's dialect — not a hang, not an internal error."""
    try:
        redis_cm = running_redis()  # a private server: this test stops it
        url = redis_cm.__enter__()
    except RedisMissing as missing:
        pytest.skip(str(missing))
    stopped = False
    try:
        cfg = config(url, new_id("gw"))
        with run_gateway(cfg, tmp_path) as base:
            status, report = readyz(base)
            assert (status, report["status"], report["checks"]["limits"]) == (
                200, "ready", "ok")
            assert chat(oai(base, key("seq"))).choices[0].message.content == "ok"

            redis_cm.__exit__(None, None, None)
            stopped = True
            status, report = readyz(base)
            assert status == 503 and report["status"] == "unavailable", report
            assert report["checks"]["limits"].startswith("unreachable"), report
            assert report["checks"]["sessions"] == "ok"

            with pytest.raises(openai.APIStatusError) as e:
                chat(oai(base, key("seq")))
            assert e.value.status_code == 503
            err = e.value.response.json()["error"]
            assert err["type"] == "server_error" and err["code"] == "limits_unavailable"
            assert err["message"] == "The rate-limit store is unavailable; please retry."
            with pytest.raises(openai.APIStatusError) as e2:
                chat(oai(base, key("seq")), stream=True)
            assert e2.value.status_code == 503
            with pytest.raises(anthropic.APIStatusError) as e3:
                ant(base, key("seq")).messages.create(
                    model="e", max_tokens=20, messages=[{"role": "user", "content": OK}])
            assert e3.value.status_code == 529
            assert e3.value.response.json()["error"]["type"] == "overloaded_error"
            for err_ in (e.value, e2.value, e3.value):
                assert PASSWORD not in err_.response.text
        log = log_path(tmp_path, base).read_text(errors="replace")
        assert "Traceback" not in log and PASSWORD not in log
    finally:
        if not stopped:
            redis_cm.__exit__(None, None, None)

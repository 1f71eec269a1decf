"""Rate limits and budgets end to end, in one ``dragoman serve`` process (in-process store):
the official SDKs against a real gateway whose upstream is the offline echo model (usage
deterministic: input = the documented estimate, output = one token per word) or the chaos
fake (a slow stream to walk away from).

Every test has tenants of its own (one static token each), so the tests share one
gateway without sharing counters.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import yaml

from tests.fakes.chaos import ChaosUpstream, Ok
from tests.gateway_proc import free_port, run_gateway

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

OK = "::reply ok"  # the echo model answers "ok": one output token
MAX_TOKENS = 20
WORDS = "::reply " + " ".join(f"w{i}" for i in range(20))  # 20 output tokens
WORDS_OUT = 20
# The race: the answer is longer than max_tokens, so every answer is cut at max_tokens and
# costs exactly its reservation; the number admitted then cannot depend on how the
# requests interleave with settlements.
RACE = "::reply " + " ".join(f"r{i}" for i in range(10))
RACE_MAX = 4
SLOW = "stream slowly"

# Tokens/min that fit two prompts of WORDS but not two prompts plus the first answer.
TPM_OUTPUT = 2 * estimate(WORDS) + WORDS_OUT - 1
BUDGET = 2 * cost(estimate(OK), MAX_TOKENS)
RACE_BUDGET = 3.5 * cost(estimate(RACE), RACE_MAX)
# One slow stream's reservation fits, two do not; one reservation plus the input share a
# cancelled stream keeps does.
SLOW_BUDGET = 2 * cost(estimate(SLOW), MAX_TOKENS) - 1

TENANTS: dict[str, dict[str, Any]] = {
    "rpm-a": {"rpm": 3}, "rpm-b": {"rpm": 3}, "tpm-small": {"tpm": 10},
    "tpm-json": {"tpm": TPM_OUTPUT}, "tpm-stream": {"tpm": TPM_OUTPUT},
}
BUDGETS = {"budget": BUDGET, "race": RACE_BUDGET, "slow": SLOW_BUDGET}
PLAIN = ["rpm-a", "rpm-b", "m1", "m2", "tpm-small", "tpm-json", "tpm-stream", "budget",
         "race", "slow"]


def key(tenant: str) -> str:
    return f"key-{tenant}"


@pytest.fixture(scope="module")
def chaos() -> Iterator[ChaosUpstream]:
    with ChaosUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def gw(chaos: ChaosUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tokens: list[dict[str, Any]] = [{"token": key(t), "tenant": t} for t in PLAIN]
    tokens += [{"token": key("carol"), "tenant": "cred", "subject": "carol",
                "limits": {"rpm": 2}},
               {"token": key("dave"), "tenant": "cred", "subject": "dave"}]
    config = {
        "models": [
            {"name": "e", "provider": "echo", "capabilities": PRICES},
            {"name": "e-capped", "provider": "echo", "capabilities": PRICES},
            {"name": "slow", "provider": "openai", "model": "up-slow",
             "base_url": chaos.url + "/v1", "api_key": "k", "capabilities": PRICES},
        ],
        "limits": {"backend": "memory", "tenants": TENANTS,
                   "models": {"e-capped": {"rpm": 3}},
                   "budgets": {t: {"usd": usd, "window": "1d"} for t, usd in BUDGETS.items()}},
        "auth": {"type": "static", "tokens": tokens},
    }
    with run_gateway(config, tmp_path_factory.mktemp("limits-gw")) as base:
        yield base


def chat(client: openai.OpenAI, text: str = OK, model: str = "e", **kw: Any) -> Any:
    """One non-streamed Chat request; the raw response (headers, ``parse()``)."""
    kw.setdefault("max_tokens", MAX_TOKENS)
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **kw)


# --- requests per minute ---------------------------------------------------------------------


def test_tenant_rpm_refuses_in_every_dialect_with_retry_after(gw: str) -> None:
    o, a = oai(gw, key("rpm-a")), ant(gw, key("rpm-a"))
    # Three requests, one per dialect, use the tenant's 3 requests per minute.
    assert chat(o).parse().choices[0].message.content == "ok"
    assert o.responses.create(model="e", input=OK, max_output_tokens=MAX_TOKENS).output_text == "ok"
    msg = a.messages.create(model="e", max_tokens=MAX_TOKENS,
                            messages=[{"role": "user", "content": OK}])
    assert msg.content[0].type == "text" and msg.content[0].text == "ok"

    refusals = refused_in_every_dialect(o, a, chat_stream=True)
    for err, is_anthropic in refusals:
        message = check_rate_limited(err, is_anthropic)
        assert "tenant 'rpm-a'" in message and "3 requests per 1m" in message, message

    # Another tenant with the same limit has its own counter.
    other = oai(gw, key("rpm-b"))
    for _ in range(3):
        assert chat(other).parse().choices[0].message.content == "ok"
    with pytest.raises(openai.RateLimitError):
        chat(other)


def test_credential_rpm_is_counted_per_subject(gw: str) -> None:
    carol, dave = oai(gw, key("carol")), oai(gw, key("dave"))
    for _ in range(2):
        chat(carol)
    with pytest.raises(openai.RateLimitError) as e:
        chat(carol)
    message = check_rate_limited(e.value)
    assert "credential of tenant 'cred'" in message and "2 requests per 1m" in message
    # The same tenant's other credential carries no limit of its own.
    for _ in range(3):
        assert chat(dave).parse().choices[0].message.content == "ok"
    with pytest.raises(anthropic.RateLimitError) as e2:
        ant(gw, key("carol")).messages.create(model="e", max_tokens=MAX_TOKENS,
                                              messages=[{"role": "user", "content": OK}])
    assert "credential of tenant 'cred'" in check_rate_limited(e2.value, True)


def test_model_rpm_is_shared_by_every_tenant(gw: str) -> None:
    m1, m2 = oai(gw, key("m1")), oai(gw, key("m2"))
    chat(m1, model="e-capped")
    chat(m2, model="e-capped")
    chat(m1, model="e-capped")
    for client in (m2, m1):
        with pytest.raises(openai.RateLimitError) as e:
            chat(client, model="e-capped")
        message = check_rate_limited(e.value)
        assert "model 'e-capped'" in message and "3 requests per 1m" in message
    # Other models are not limited.
    assert chat(m2).parse().choices[0].message.content == "ok"


# --- tokens per minute -----------------------------------------------------------------------


def test_a_prompt_larger_than_the_tpm_limit_is_refused_for_good(gw: str) -> None:
    client = oai(gw, key("tpm-small"))
    big = "x" * 100
    assert estimate(big) > 10
    with pytest.raises(openai.RateLimitError) as e:
        chat(client, big)
    assert e.value.status_code == 429
    message = e.value.response.json()["error"]["message"]
    assert "alone exceeds" in message and "tenant 'tpm-small'" in message
    assert "10 tokens per 1m" in message
    # Waiting would not help, so no retry hint.
    assert "retry-after" not in e.value.response.headers
    assert "retry-after-ms" not in e.value.response.headers
    # Nothing was charged: a prompt that fits is served.
    small = "::reply hi"
    assert estimate(small) + 1 <= 10
    assert chat(client, small).parse().choices[0].message.content == "hi"


def test_output_tokens_count_toward_tpm_after_the_answer(gw: str) -> None:
    """The first answer's input and output fill the minute: the same prompt again would
    fit if only inputs were counted (2 inputs <= limit), and is refused."""
    prompt_tokens = estimate(WORDS)
    assert 2 * prompt_tokens <= TPM_OUTPUT < 2 * prompt_tokens + WORDS_OUT
    client = oai(gw, key("tpm-json"))
    raw = chat(client, WORDS, max_tokens=100)
    assert raw.headers["x-dragoman-input-tokens"] == str(prompt_tokens)
    assert raw.headers["x-dragoman-output-tokens"] == str(WORDS_OUT)
    with pytest.raises(openai.RateLimitError) as e:
        chat(client, WORDS, max_tokens=100)
    message = check_rate_limited(e.value)
    assert f"{TPM_OUTPUT} tokens per 1m" in message


def test_a_streams_output_tokens_count_toward_tpm(gw: str) -> None:
    client = ant(gw, key("tpm-stream"))
    with client.messages.stream(model="e", max_tokens=100,
                                messages=[{"role": "user", "content": WORDS}]) as stream:
        final = stream.get_final_message()
    assert final.usage.input_tokens == estimate(WORDS)
    assert final.usage.output_tokens == WORDS_OUT
    with pytest.raises(anthropic.RateLimitError) as e:
        client.messages.create(model="e", max_tokens=100, stream=True,
                               messages=[{"role": "user", "content": WORDS}])
    assert f"{TPM_OUTPUT} tokens per 1m" in check_rate_limited(e.value, True)


# --- budgets ---------------------------------------------------------------------------------


def test_budget_reserves_the_maximum_and_settles_to_the_actual_cost(gw: str) -> None:
    o, a = oai(gw, key("budget")), ant(gw, key("budget"))
    prompt_tokens = estimate(OK)
    reservation = cost(prompt_tokens, MAX_TOKENS)
    assert reservation * 2 == BUDGET

    # A request that could cost more than the whole budget never fits: no retry hint.
    with pytest.raises(openai.RateLimitError) as whole:
        chat(o, max_tokens=10_000)
    assert "lower max_tokens" in check_budget_refusal(whole.value)
    assert "retry-after" not in whole.value.response.headers

    first = chat(o)
    assert first.headers["x-dragoman-input-tokens"] == str(prompt_tokens)
    assert first.headers["x-dragoman-output-tokens"] == "1"
    actual = float(first.headers["x-dragoman-cost-usd"])
    assert actual == cost(prompt_tokens, 1) < reservation
    # Request n is let in while (n - 1) settled answers plus one reservation fit: more
    # than the 2 reservations the budget holds, because each settles to its real cost.
    admitted = int((BUDGET - reservation) // actual) + 1
    assert admitted > BUDGET // reservation
    costs = [actual]
    for _ in range(admitted - 1):
        costs.append(float(chat(o).headers["x-dragoman-cost-usd"]))
    assert costs == [actual] * admitted

    refusals = refused_in_every_dialect(o, a)
    for err, is_anthropic in refusals:
        message = check_budget_refusal(err, is_anthropic)
        assert "budget of tenant 'budget' is exhausted" in message, message
        assert f"{BUDGET:g} USD per 1d" in message
        assert int(err.response.headers["retry-after"]) > 0

    # What is left is exactly the budget minus the settled costs: the largest max_tokens
    # whose reservation fits it is served, one more token is refused.
    left = BUDGET - sum(costs)
    fits = int((left - cost(prompt_tokens, 0)) // cost(0, 1))
    assert fits >= 1
    with pytest.raises(openai.RateLimitError) as e5:
        chat(o, max_tokens=fits + 1)
    check_budget_refusal(e5.value)
    assert chat(o, max_tokens=fits).parse().choices[0].message.content == "ok"


async def test_concurrent_requests_cannot_overspend_a_budget(gw: str) -> None:
    reservation = cost(estimate(RACE), RACE_MAX)
    served, refused = await fire_chat(
        [gw], key("race"), 30, model="e", max_tokens=RACE_MAX,
        messages=[{"role": "user", "content": RACE}])
    assert len(served) == RACE_BUDGET // reservation == 3
    assert len(refused) == 27
    assert sum(served) <= RACE_BUDGET
    for e in refused:
        check_budget_refusal(e)


def test_a_client_leaving_mid_stream_releases_its_reservation(gw: str,
                                                              chaos: ChaosUpstream) -> None:
    chaos.script("up-slow", [Ok(chunks=200, chunk_delay=0.05)])  # 10 s of stream
    client = oai(gw, key("slow"))
    stream = client.chat.completions.create(
        model="slow", stream=True, max_tokens=MAX_TOKENS,
        messages=[{"role": "user", "content": SLOW}])
    received = 0
    for chunk in stream:
        received += bool(chunk.choices and chunk.choices[0].delta.content)
        if received == 3:
            break
    # The open stream holds one reservation: a second does not fit beside it.
    with pytest.raises(openai.RateLimitError) as e:
        chat(client, SLOW, model="slow")
    check_budget_refusal(e.value)

    left_at = time.monotonic()
    stream.close()
    chaos.wait_for(lambda: chaos.streams_cancelled == 1, what="upstream stream cancelled")
    # Released once the gateway has settled the abandoned stream (its input share kept):
    # well before the upstream would have finished the stream.
    deadline = left_at + 5.0
    while True:
        try:
            answer = chat(client, SLOW, model="slow")
            break
        except openai.RateLimitError as refused:
            check_budget_refusal(refused)
            assert time.monotonic() < deadline, "the reservation was not released"
            time.sleep(0.05)
    assert answer.parse().choices[0].message.content == "chaos:up-slow"
    assert [r.outcome for r in chaos.requests("up-slow")] == ["cancelled", "completed"]


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(("limits", "names"), [
    ({"backend": "redis"}, "`$.limits.redis_url` is required for the redis backend"),
    ({"budget": {"usd": 1, "window": "fortnight"}},
     "invalid duration 'fortnight'"),
    ({"budgets": {"team-a": {"usd": 1, "window": "0s"}}},
     "a budget window must be longer than 0 - at `$.limits.budgets.team-a.window`"),
])
def test_limits_config_errors_name_the_key(tmp_path: Path, limits: dict[str, Any],
                                           names: str) -> None:
    cfg = tmp_path / "dragoman.yaml"
    cfg.write_text(yaml.safe_dump({"limits": limits}))
    proc = subprocess.run(
        [sys.executable, "-m", "dragoman.cli", "serve", "--config", str(cfg),
         "--host", "127.0.0.1", "--port", str(free_port())],
        capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert names in proc.stderr
    if "fortnight" in names:
        assert "- at `$.limits.budget.window`" in proc.stderr
    assert "Traceback" not in proc.stderr


def refused_in_every_dialect(o: openai.OpenAI, a: anthropic.Anthropic,
                             chat_stream: bool = False) -> list[tuple[Any, bool]]:
    """One request per dialect (Chat, optionally a Chat stream, Responses, Messages and a
    Messages stream), each of which must be refused with a 429: (error, is Anthropic)."""
    calls: list[tuple[Any, bool]] = [(lambda: chat(o), False)]
    if chat_stream:  # a stream is refused before it starts
        calls.append((lambda: o.chat.completions.create(
            model="e", stream=True, max_tokens=MAX_TOKENS,
            messages=[{"role": "user", "content": OK}]), False))
    calls += [
        (lambda: o.responses.create(model="e", input=OK, max_output_tokens=MAX_TOKENS), False),
        (lambda: a.messages.create(model="e", max_tokens=MAX_TOKENS,
                                   messages=[{"role": "user", "content": OK}]), True),
        (lambda: a.messages.create(model="e", max_tokens=MAX_TOKENS, stream=True,
                                   messages=[{"role": "user", "content": OK}]), True),
    ]
    out: list[tuple[Any, bool]] = []
    for call, is_anthropic in calls:
        with pytest.raises(anthropic.RateLimitError if is_anthropic
                           else openai.RateLimitError) as e:
            call()
        out.append((e.value, is_anthropic))
    return out

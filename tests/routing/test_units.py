"""The routing parts that need no socket: circuit breaker states, balancing strategies
(with a seeded random source), back-off bounds, and how a request's end reaches the
breaker."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from dragoman.core import ErrorKind
from dragoman.providers.echo import EchoProvider
from dragoman.router.attempts import backoff_delay
from dragoman.router.balance import pick
from dragoman.router.health import (
    DEFAULT_BREAKER,
    NO_BREAKER,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    DeploymentHealth,
    Ticket,
)
from dragoman.router.table import Deployment, ModelTable, RetryPolicy, RoutePolicy

# --- circuit breaker ---------------------------------------------------------------------------


def state(b: CircuitBreaker) -> BreakerState:
    """(Read through a call: mypy would otherwise narrow ``b.state`` across calls.)"""
    return b.state


def opened(policy: BreakerPolicy, now: float = 0.0) -> CircuitBreaker:
    """A breaker opened at ``now`` by consecutive failures."""
    b = CircuitBreaker(policy)
    for _ in range(policy.failures):
        b.record(True, now)
    assert state(b) is BreakerState.OPEN
    return b


def test_consecutive_failures_open_the_breaker() -> None:
    b = CircuitBreaker(BreakerPolicy(failures=3, cooldown=10))
    b.record(True, 0.0)
    b.record(True, 0.1)
    b.record(False, 0.2)  # a success in between starts the count again
    b.record(True, 0.3)
    b.record(True, 0.4)
    assert state(b) is BreakerState.CLOSED and b.available(0.4)
    b.record(True, 0.5)
    assert state(b) is BreakerState.OPEN
    assert b.opened_until == pytest.approx(10.5)
    assert not b.available(10.4) and not b.admit(10.4)
    assert b.available(10.5)


def test_no_verdict_does_not_count() -> None:
    b = CircuitBreaker(BreakerPolicy(failures=2))
    b.record(True, 0.0)
    b.record(None, 0.1)  # the client left: says nothing about the upstream
    assert state(b) is BreakerState.CLOSED
    b.record(True, 0.2)
    assert state(b) is BreakerState.OPEN


def test_error_rate_opens_the_breaker() -> None:
    policy = BreakerPolicy(failures=100, error_rate=0.5, min_requests=4, window=10)
    b = CircuitBreaker(policy)
    for t, failed in enumerate([True, False, True]):
        b.record(failed, float(t))
    assert state(b) is BreakerState.CLOSED  # 2 of 3, but fewer than min_requests
    b.record(False, 3.0)
    assert state(b) is BreakerState.CLOSED  # 2 of 4 reached only on a success: no verdict
    b.record(True, 4.0)
    assert state(b) is BreakerState.OPEN  # 3 of 5 >= 0.5


def test_error_rate_only_counts_the_window() -> None:
    policy = BreakerPolicy(failures=100, error_rate=0.5, min_requests=4, window=10)
    b = CircuitBreaker(policy)
    for t in range(3):
        b.record(True, float(t))  # these fall out of the window below
    for later in (20.0, 21.0, 22.0):
        b.record(False, later)
    b.record(True, 23.0)
    assert state(b) is BreakerState.CLOSED  # 1 of 4 within the last 10 s


def test_half_open_probe_success_closes() -> None:
    b = opened(BreakerPolicy(failures=1, cooldown=5), now=0.0)
    assert b.admit(5.0)  # the probe
    assert state(b) is BreakerState.HALF_OPEN
    assert not b.available(5.1) and not b.admit(5.1)  # one probe at a time
    b.record(False, 5.2)
    assert state(b) is BreakerState.CLOSED and b.available(5.2) and b.admit(5.2)
    b.record(True, 6.0)  # counting starts afresh: failures=1 opens again at once
    assert state(b) is BreakerState.OPEN


def test_half_open_probe_failure_opens_again() -> None:
    b = opened(BreakerPolicy(failures=2, cooldown=5), now=0.0)
    assert b.admit(6.0)
    b.record(True, 6.5)
    assert state(b) is BreakerState.OPEN
    assert b.opened_until == pytest.approx(11.5)  # a new cool-down from the failure
    assert not b.available(11.0) and b.available(11.5)


def test_half_open_probe_without_verdict_frees_the_slot() -> None:
    b = opened(BreakerPolicy(failures=1, cooldown=5), now=0.0)
    assert b.admit(5.0)
    b.record(None, 5.5)  # the probe's client left
    assert state(b) is BreakerState.HALF_OPEN
    assert b.available(5.6) and b.admit(5.6)  # another probe may go
    b.record(False, 5.7)
    assert state(b) is BreakerState.CLOSED


def test_failures_zero_never_opens() -> None:
    b = CircuitBreaker(NO_BREAKER)
    for t in range(1000):
        b.record(True, float(t) / 100)
    assert state(b) is BreakerState.CLOSED and b.available(10.0)


# --- how a request's end reaches the breaker ---------------------------------------------------


def test_ticket_counts_only_failures_of_the_upstream() -> None:
    h = DeploymentHealth(BreakerPolicy(failures=2, cooldown=30))

    def end(outcome: ErrorKind | str) -> None:
        t = Ticket(h)
        assert h.inflight == 1
        t.end(outcome)
        t.end(ErrorKind.UPSTREAM)  # ending twice is harmless
        assert h.inflight == 0

    end(ErrorKind.UPSTREAM)
    # an answer about the request (429, 400, context length) is a healthy upstream talking
    end(ErrorKind.RATE_LIMITED)
    end(ErrorKind.UPSTREAM)
    end("invalid_request")
    end(ErrorKind.OVERLOADED)
    end(ErrorKind.CONTEXT_LENGTH)
    end("transport")
    assert state(h.breaker) is BreakerState.CLOSED
    # no verdict at all: the count goes on
    for outcome in ("client_closed", "not-a-kind"):
        end(outcome)
    end(ErrorKind.TIMEOUT)
    assert state(h.breaker) is BreakerState.OPEN


def test_ticket_success_resets_the_count_and_measures_latency() -> None:
    h = DeploymentHealth(BreakerPolicy(failures=2))
    Ticket(h).end(ErrorKind.OVERLOADED)
    t = Ticket(h)
    t.answered()
    t.end("ok")
    assert h.latency is not None and h.latency >= 0
    Ticket(h).end(ErrorKind.TRANSPORT)
    assert state(h.breaker) is BreakerState.CLOSED


def test_latency_is_a_moving_average() -> None:
    h = DeploymentHealth(NO_BREAKER)
    h.observe_latency(1.0)
    assert h.latency == 1.0
    h.observe_latency(2.0)
    assert h.latency == pytest.approx(1.0 + DeploymentHealth.ALPHA)


def test_breakers_default_on_only_where_there_is_somewhere_else_to_go() -> None:
    def dep(name: str, breaker: BreakerPolicy | None = None) -> Deployment:
        return Deployment(name, EchoProvider(), breaker=breaker)
    own = BreakerPolicy(failures=7)
    table = ModelTable([dep("solo"), dep("pair"), dep("pair"), dep("with-fb"), dep("big"),
                        dep("configured", own)],
                       {"with-fb": RoutePolicy(fallbacks=("big",))})
    policy = {d.name: d.health.breaker._policy for d in table.deployments()}
    assert policy == {"solo": NO_BREAKER, "pair": DEFAULT_BREAKER, "with-fb": DEFAULT_BREAKER,
                      "big": NO_BREAKER, "configured": own}


# --- balancing ---------------------------------------------------------------------------------


def deployments(*weights: float) -> list[Deployment]:
    return [Deployment(f"d{i}", EchoProvider(), weight=w) for i, w in enumerate(weights)]


def names(picked: list[Deployment]) -> Counter[str]:
    return Counter(d.name for d in picked)


def test_weighted_follows_the_weights() -> None:
    ds = deployments(3, 1)
    rng = random.Random(1234)
    got = names([pick("weighted", ds, rng) for _ in range(4000)])
    assert 0.72 <= got["d0"] / 4000 <= 0.78


def test_weighted_is_reproducible_with_a_seed() -> None:
    ds = deployments(1, 1, 2)
    a, b = random.Random(99), random.Random(99)
    picks = [pick("weighted", ds, a).name for _ in range(50)]
    assert picks == [pick("weighted", ds, b).name for _ in range(50)]
    assert set(picks) == {"d0", "d1", "d2"}


def test_weight_zero_only_when_nothing_else() -> None:
    ds = deployments(0, 1)
    rng = random.Random(5)
    assert names([pick("weighted", ds, rng) for _ in range(500)]) == {"d1": 500}
    zeros = deployments(0, 0)
    assert set(names([pick("weighted", zeros, rng) for _ in range(200)])) == {"d0", "d1"}
    assert pick("weighted", ds[:1], rng) is ds[0]  # the only candidate, weight or not


def test_least_outstanding_takes_the_least_loaded() -> None:
    ds = deployments(5, 1, 1)
    rng = random.Random(3)
    ds[0].health.inflight, ds[1].health.inflight, ds[2].health.inflight = 2, 1, 4
    assert {pick("least_outstanding", ds, rng).name for _ in range(100)} == {"d1"}
    ds[2].health.inflight = 1  # a tie between d1 and d2: by weight (equal here)
    assert set(names([pick("least_outstanding", ds, rng) for _ in range(200)])) == \
        {"d1", "d2"}


def test_latency_measures_everyone_then_takes_the_fastest() -> None:
    ds = deployments(1, 1, 1)
    rng = random.Random(11)
    ds[0].health.observe_latency(0.05)
    ds[1].health.observe_latency(0.5)
    assert {pick("latency", ds, rng).name for _ in range(100)} == {"d2"}  # unmeasured
    ds[2].health.observe_latency(0.2)
    assert {pick("latency", ds, rng).name for _ in range(100)} == {"d0"}
    ds[2].health.latency = 0.05  # equal best: shared by weight
    assert set(names([pick("latency", ds, rng) for _ in range(200)])) == {"d0", "d2"}


# --- back-off ----------------------------------------------------------------------------------


class Fixed(random.Random):
    """A random source that always draws ``value``: the jitter's extremes."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(("attempt", "cap"), [(0, 0.25), (1, 0.25), (2, 0.5), (3, 1.0),
                                              (6, 8.0), (30, 8.0)])
def test_backoff_is_exponential_with_equal_jitter(attempt: int, cap: float) -> None:
    policy = RetryPolicy(backoff=0.25, max_backoff=8.0)
    assert backoff_delay(attempt, policy, None, Fixed(0.0)) == pytest.approx(cap / 2)
    assert backoff_delay(attempt, policy, None, Fixed(0.999999)) == pytest.approx(cap)
    rng = random.Random(attempt)
    for _ in range(200):
        assert cap / 2 <= backoff_delay(attempt, policy, None, rng) <= cap


def test_retry_after_is_a_floor() -> None:
    policy = RetryPolicy(backoff=0.25, max_backoff=8.0)
    assert backoff_delay(1, policy, 3.0, Fixed(0.5)) == 3.0  # longer than the back-off
    assert backoff_delay(6, policy, 0.1, Fixed(0.0)) == pytest.approx(4.0)  # shorter: ignored
    assert backoff_delay(1, policy, 0.0, Fixed(0.0)) == pytest.approx(0.125)

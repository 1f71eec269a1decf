"""What one worker knows about a deployment's health: requests in flight, recent latency,
a rate-limit cool-down, and its circuit breaker.

All of it is per process and per deployment: a breaker reacts to what this worker sees
(no shared state, no round trip on the hot path). Workers converge independently; an
upstream that is down trips every worker's breaker within a few requests.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from dataclasses import dataclass

from ..core import ErrorKind
from ..core.spans import Span

#: Failures that say the deployment itself is unwell (count toward the breaker). A 429 is
#: not one: it cools the deployment down for its ``retry-after`` instead.
BREAKER_KINDS = frozenset({ErrorKind.UPSTREAM, ErrorKind.TRANSPORT, ErrorKind.TIMEOUT,
                           ErrorKind.OVERLOADED})


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """Open after ``failures`` consecutive failures, or when at least ``min_requests``
    finished within ``window`` seconds and the share that failed reached ``error_rate``.
    Stay open ``cooldown`` seconds, then let one probe through (half-open): its success
    closes the breaker, its failure opens it again. ``failures: 0`` disables the breaker."""

    failures: int = 5
    error_rate: float = 0.5
    min_requests: int = 20
    window: float = 30.0
    cooldown: float = 30.0


DEFAULT_BREAKER = BreakerPolicy()
#: A deployment with nowhere else to send its traffic (the only one of a route without
#: fallbacks) gets no breaker unless one is configured: opening it would only turn the
#: upstream's own errors into ``circuit_open``.
NO_BREAKER = BreakerPolicy(failures=0)


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    __slots__ = ("_bad", "_consecutive", "_outcomes", "_policy", "_probing", "opened_until",
                 "state")

    def __init__(self, policy: BreakerPolicy) -> None:
        self._policy = policy
        self.state = BreakerState.CLOSED
        self.opened_until = 0.0
        self._consecutive = 0
        self._probing = False
        self._outcomes: deque[tuple[float, bool]] = deque()  # (finished at, failed)
        self._bad = 0  # failures among _outcomes (kept, not recounted)

    def available(self, now: float) -> bool:
        """Would a request be let through now? (No side effect: see ``admit``.)"""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            return now >= self.opened_until
        return not self._probing

    def admit(self, now: float) -> bool:
        """Let a request through: an open breaker whose cool-down has passed becomes
        half-open and this request is its one probe."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN and now < self.opened_until:
            return False
        if self._probing:
            return False
        self.state = BreakerState.HALF_OPEN
        self._probing = True
        return True

    def record(self, failed: bool | None, now: float) -> None:
        """``failed`` None: the request ended without a verdict (the client left), which
        frees a probe slot and changes nothing else."""
        if failed is None:
            self._probing = False
            return
        p = self._policy
        if self.state is BreakerState.HALF_OPEN:
            self._probing = False
            if failed:
                self._open(now)
            else:
                self._close()
            return
        if p.failures <= 0:
            return
        self._consecutive = self._consecutive + 1 if failed else 0
        outcomes = self._outcomes
        outcomes.append((now, failed))
        self._bad += failed
        horizon = now - p.window
        while outcomes and outcomes[0][0] < horizon:
            self._bad -= outcomes.popleft()[1]
        if self.state is BreakerState.OPEN:
            return
        too_many = self._consecutive >= p.failures
        too_often = failed and len(outcomes) >= p.min_requests \
            and self._bad / len(outcomes) >= p.error_rate
        if too_many or too_often:
            self._open(now)

    def _open(self, now: float) -> None:
        self.state = BreakerState.OPEN
        self.opened_until = now + self._policy.cooldown
        self._consecutive = 0
        self._outcomes.clear()
        self._bad = 0

    def _close(self) -> None:
        self.state = BreakerState.CLOSED
        self._consecutive = 0
        self._outcomes.clear()
        self._bad = 0


class DeploymentHealth:
    """Live numbers the balancer and breaker read. ``latency`` is an exponentially
    weighted mean of the time to the first answer (first stream event, or the whole
    answer); None until the first success."""

    __slots__ = ("breaker", "cool_until", "inflight", "latency")

    ALPHA = 0.2

    def __init__(self, breaker: BreakerPolicy) -> None:
        self.inflight = 0
        self.latency: float | None = None
        self.cool_until = 0.0
        self.breaker = CircuitBreaker(breaker)

    def usable(self, now: float) -> bool:
        return now >= self.cool_until and self.breaker.available(now)

    def observe_latency(self, seconds: float) -> None:
        prev = self.latency
        self.latency = seconds if prev is None else prev + self.ALPHA * (seconds - prev)


class Ticket:
    """One request on one deployment: counted in flight from ``begin`` until ``end``,
    which tells the breaker how it went. Ending twice is harmless."""

    __slots__ = ("_ended", "_health", "span", "started")

    def __init__(self, health: DeploymentHealth) -> None:
        self._health = health
        self._ended = False
        self.started = time.monotonic()
        #: the routing attempt's span when tracing is on; ends with the ticket
        self.span: Span | None = None
        health.inflight += 1

    def answered(self) -> None:
        """The deployment answered (first event or whole response): latency sample."""
        self._health.observe_latency(time.monotonic() - self.started)

    def end(self, outcome: ErrorKind | str | None) -> None:
        """``outcome``: None or ``"ok"`` for success, an error kind, or ``"client_closed"``
        (no verdict)."""
        if self._ended:
            return
        self._ended = True
        if self.span is not None:
            self.span.end(outcome)
        h = self._health
        h.inflight -= 1
        if outcome is None or outcome == "ok":
            h.breaker.record(False, time.monotonic())
        elif outcome == "client_closed":
            h.breaker.record(None, time.monotonic())
        else:
            kind = outcome if isinstance(outcome, ErrorKind) else _kind(outcome)
            # An answer about the request (400, 404, 429…) is a healthy upstream talking.
            h.breaker.record(None if kind is None else kind in BREAKER_KINDS,
                             time.monotonic())


def _kind(value: str) -> ErrorKind | None:
    try:
        return ErrorKind(value)
    except ValueError:
        return None

"""Prometheus metrics (``prometheus_client``), named after the OpenTelemetry GenAI
semantic conventions where one exists.

Metric (type): labels

- ``dragoman_requests_total`` (counter): model, deployment, provider, dialect, status,
  outcome
- ``gen_ai_client_operation_duration_seconds`` (histogram, the whole request):
  gen_ai_operation_name, gen_ai_provider_name, gen_ai_request_model, error_type
- ``gen_ai_server_time_to_first_token_seconds`` (histogram, streams): gen_ai_provider_name,
  gen_ai_request_model
- ``dragoman_upstream_duration_seconds`` (histogram, to the first answer): deployment,
  provider
- ``gen_ai_client_token_usage`` (histogram, tokens per request): gen_ai_operation_name,
  gen_ai_provider_name, gen_ai_request_model, gen_ai_token_type (input, output), tenant
- ``dragoman_cached_tokens_total``, ``dragoman_cost_usd_total`` (counters): tenant, model
- ``dragoman_requests_in_flight``, ``dragoman_streams_in_flight`` (gauges)
- ``dragoman_retries_total`` (counter): deployment; ``dragoman_fallbacks_total``
  (counter): model, fallback
- ``dragoman_breaker_state`` (gauge: 0 closed, 1 half-open, 2 open): deployment
- ``dragoman_limit_refusals_total`` (counter): tenant, kind
- ``dragoman_upstream_connections`` (gauge): deployment
- ``dragoman_session_store_duration_seconds`` (histogram): operation

Cost on the request path: ``count`` (the usage listener) adds the finished request into
the running tally of its label set: one dict lookup by its label values, a ``bisect`` per
histogram into a preallocated list of bucket counts, a few number adds; nothing is kept
per request. ``flush`` (the server calls it every second and before every scrape) adds
each label set's tally into prometheus_client's metrics, one ``inc`` per label set and per
histogram bucket touched (prometheus_client's own ``observe`` takes a lock and walks the
buckets for every value). So the once-a-second work grows with the label sets seen in
that second, not with the requests (measured: bench/README.md, "Metrics tallied per
label set"). In-flight counts are plain integers; breakers and pools are sampled by the
server, not tracked per request.

Several worker processes (``dragoman serve --workers N``): ``dragoman serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start, every value
lives in a memory-mapped file there, and ``render`` in any worker merges all of them, so
one scrape sees every worker (prometheus_client's multiprocess mode). In-flight and
connection gauges sum the live workers, the breaker gauge shows the worst of them.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as _values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from ..core import Usage

#: ``dragoman_breaker_state`` values.
BREAKER_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}

# Bucket boundaries recommended by the GenAI semantic conventions.
_DURATION = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96,
             81.92)
_TTFT = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
         10.0)
_TOKENS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
_STORE = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"

# The same boundaries in milliseconds, the unit a finished request carries its times in:
# ``count`` buckets a time without converting it (every boundary is exact in both units).
_DURATION_MS = tuple(b * 1000 for b in _DURATION)
_TTFT_MS = tuple(b * 1000 for b in _TTFT)


class FinishedRequest(Protocol):
    """What ``GatewayMetrics.observe`` reads of a finished request (the server's
    ``UsageRecord``). Times in milliseconds; ``ttft_ms``/``upstream_ms`` None when there
    was no stream or no answer; ``retried``: labels of deployments whose attempt failed
    and was retried; ``refused``: refused by a rate limit or budget before any upstream."""

    @property
    def tenant(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def deployment(self) -> str: ...
    @property
    def served_model(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def dialect(self) -> str: ...
    @property
    def status(self) -> int: ...
    @property
    def outcome(self) -> str: ...
    @property
    def duration_ms(self) -> float: ...
    @property
    def ttft_ms(self) -> float | None: ...
    @property
    def upstream_ms(self) -> float | None: ...
    @property
    def usage(self) -> Usage: ...
    @property
    def cost(self) -> float: ...
    @property
    def retried(self) -> tuple[str, ...]: ...
    @property
    def refused(self) -> bool: ...


def multiprocess_dir() -> str | None:
    """The shared directory of multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), or None.

    prometheus_client picks its value class from that variable when it is first
    imported; ``dragoman serve`` sets it later (after reading the config, which imports
    this module), so the class is switched here, before any metric is made: metrics
    read ``values.ValueClass`` when they are constructed."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path and _values.ValueClass is _values.MutexValue:
        _values.ValueClass = _values.MultiProcessValue()  # type: ignore[no-untyped-call]
    return path or None


class _Children:
    """Label children of one metric, cached by their label values: ``labels()`` checks
    and copies its arguments on every call, a dict lookup does not."""

    __slots__ = ("_cache", "_metric")

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._cache: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._cache.get(values)
        if child is None:
            child = self._cache[values] = self._metric.labels(*values)
        return child


def add_counts(child: Any, counts: Sequence[int], total: float) -> None:
    """Add bucket ``counts`` (one per upper bound of the histogram ``child``, +Inf last,
    not cumulative) and their sum ``total`` into it: what ``child.observe`` of each value
    would have done, one ``inc`` per bucket touched. Reads prometheus_client's histogram
    internals (``_sum``, ``_buckets``: per-bucket values, made cumulative when rendered), the
    ones its ``observe`` uses; tests/observe/test_metrics_tally.py compares the expositions."""
    child._sum.inc(total)
    buckets = child._buckets
    for i, n in enumerate(counts):
        if n:
            buckets[i].inc(n)


class _Tally:
    """What the requests of one label set added since the last flush: counts, sums, and
    per histogram one count per bucket (``bisect_left`` of the value in the boundaries is
    its bucket: the first upper bound it does not exceed; the last one is +Inf)."""

    __slots__ = ("cached", "cost", "duration", "duration_ms", "input", "input_sum", "n",
                 "output", "output_sum", "refused", "ttft", "ttft_ms", "upstream",
                 "upstream_ms")

    def __init__(self) -> None:
        self.n = 0
        self.refused = 0
        self.cached = 0
        self.cost = 0.0
        self.duration = [0] * (len(_DURATION_MS) + 1)
        self.duration_ms = 0.0
        self.ttft = [0] * (len(_TTFT_MS) + 1)
        self.ttft_ms = 0.0
        self.upstream = [0] * (len(_DURATION_MS) + 1)
        self.upstream_ms = 0.0
        self.input = [0] * (len(_TOKENS) + 1)
        self.input_sum = 0
        self.output = [0] * (len(_TOKENS) + 1)
        self.output_sum = 0


class GatewayMetrics:
    """The gateway's metrics in a registry of their own (so several gateways in one
    process, as in tests, do not collide)."""

    def __init__(self) -> None:
        self.dir = multiprocess_dir()
        #: the requests finished since the last flush, tallied by their label values
        self._tallies: dict[tuple[Any, ...], _Tally] = {}
        self._retried: list[str] = []
        #: the session store's operations since the last flush: bucket counts and sum
        self._store_pending: dict[str, tuple[list[int], list[float]]] = {}
        #: generation requests and streamed answers in flight in this worker
        self.requests_now = 0
        self.streams_now = 0
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = _Children(Counter(
            "dragoman_requests_total", "Generation requests by how they ended.",
            ["model", "deployment", "provider", "dialect", "status", "outcome"], registry=r))
        self.duration = _Children(Histogram(
            "gen_ai_client_operation_duration_seconds",
            "Time from receiving a generation request to its last byte.",
            ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
             "error_type"], buckets=_DURATION, registry=r))
        self.ttft = _Children(Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time from receiving a streamed request to its first byte to the client.",
            ["gen_ai_provider_name", "gen_ai_request_model"], buckets=_TTFT, registry=r))
        self.upstream = _Children(Histogram(
            "dragoman_upstream_duration_seconds",
            "Time from the first attempt to the serving deployment's first answer (whole "
            "response or first stream event), retries included.",
            ["deployment", "provider"], buckets=_DURATION, registry=r))
        self.tokens = _Children(Histogram(
            "gen_ai_client_token_usage", "Tokens per request by type (input, output).",
            ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
             "gen_ai_token_type", "tenant"], buckets=_TOKENS, registry=r))
        self.cached = _Children(Counter(
            "dragoman_cached_tokens", "Input tokens read from the provider's prompt cache.",
            ["tenant", "model"], registry=r))
        self.cost = _Children(Counter(
            "dragoman_cost_usd", "What requests cost, in the configured currency (USD).",
            ["tenant", "model"], registry=r))
        self.in_flight = Gauge("dragoman_requests_in_flight",
                               "Generation requests being answered.", registry=r,
                               multiprocess_mode="livesum")
        self.streams = Gauge("dragoman_streams_in_flight", "Streamed answers being sent.",
                             registry=r, multiprocess_mode="livesum")
        self.retries = _Children(Counter(
            "dragoman_retries", "Attempts on a deployment that failed and were retried "
            "(on it after a back-off, or on another deployment).", ["deployment"],
            registry=r))
        self.fallbacks = _Children(Counter(
            "dragoman_fallbacks", "Requests answered by a fallback model.",
            ["model", "fallback"], registry=r))
        self.breaker = _Children(Gauge(
            "dragoman_breaker_state", "Circuit breaker per deployment: 0 closed, "
            "1 half-open, 2 open (the worst over the workers).", ["deployment"], registry=r,
            multiprocess_mode="livemax"))
        self.refusals = _Children(Counter(
            "dragoman_limit_refusals", "Requests refused by a rate limit or budget.",
            ["tenant", "kind"], registry=r))
        self.connections = _Children(Gauge(
            "dragoman_upstream_connections", "Upstream connections open (in use or idle).",
            ["deployment"], registry=r, multiprocess_mode="livesum"))
        self.store = _Children(Histogram(
            "dragoman_session_store_duration_seconds",
            "Session store operations (one transaction each), by operation.",
            ["operation"], buckets=_STORE, registry=r))

    # --- the request path -------------------------------------------------------------------

    def count(self, rec: FinishedRequest) -> None:
        """Tally one finished request (the usage listener): its label set's tally found by
        one dict lookup, each time and token count bucketed at once. Nothing of the request
        is kept."""
        key = (rec.model, rec.deployment, rec.provider, rec.dialect, rec.status, rec.outcome,
               rec.tenant, rec.served_model)
        t = self._tallies.get(key)
        if t is None:
            t = self._tallies[key] = _Tally()
        t.n += 1
        ms = rec.duration_ms
        t.duration[bisect_left(_DURATION_MS, ms)] += 1
        t.duration_ms += ms
        maybe = rec.ttft_ms
        if maybe is not None:
            t.ttft[bisect_left(_TTFT_MS, maybe)] += 1
            t.ttft_ms += maybe
        maybe = rec.upstream_ms
        if maybe is not None:
            t.upstream[bisect_left(_DURATION_MS, maybe)] += 1
            t.upstream_ms += maybe
        # The counts read off the ``Usage`` struct: a record's ``input_tokens`` property
        # is a Python call.
        u = rec.usage
        i = u.input_tokens
        o = u.output_tokens
        if i or o:
            t.input[bisect_left(_TOKENS, i)] += 1
            t.input_sum += i
            t.output[bisect_left(_TOKENS, o)] += 1
            t.output_sum += o
        t.cached += u.cached_tokens
        t.cost += rec.cost
        if rec.refused:
            t.refused += 1
        if rec.retried:
            self._retried.extend(rec.retried)

    def store_timing(self) -> Callable[[str, float], None]:
        """The session store's ``on_timing`` hook (called on the event loop): the time
        bucketed at once, added into the histogram at the next ``flush``."""
        pending = self._store_pending

        def timing(operation: str, seconds: float) -> None:
            got = pending.get(operation)
            if got is None:
                got = pending[operation] = ([0] * (len(_STORE) + 1), [0.0])
            got[0][bisect_left(_STORE, seconds)] += 1
            got[1][0] += seconds

        return timing

    # --- once a second ----------------------------------------------------------------------

    def flush(self) -> None:
        """Add what was tallied since the last flush into the metrics (one update per label
        set and per bucket touched, whatever the number of requests), and set the in-flight
        counts."""
        self.in_flight.set(self.requests_now)
        self.streams.set(self.streams_now)
        if self._store_pending:
            for operation, (counts, total) in self._store_pending.items():
                add_counts(self.store(operation), counts, total[0])
            self._store_pending.clear()  # (the hook holds this very dict)
        if self._retried:
            for label in self._retried:
                self.retries(label).inc()
            self._retried.clear()
        if not self._tallies:
            return
        tallies, self._tallies = self._tallies, {}
        for (model, deployment, provider, dialect, status, outcome, tenant, served), t \
                in tallies.items():
            self.requests(model, deployment, provider, dialect, str(status), outcome).inc(t.n)
            add_counts(self.duration("chat", provider, model,
                                     "" if outcome == "ok" else outcome),
                       t.duration, t.duration_ms * 0.001)
            if any(t.ttft):
                add_counts(self.ttft(provider, model), t.ttft, t.ttft_ms * 0.001)
            if any(t.upstream):
                add_counts(self.upstream(deployment, provider), t.upstream,
                           t.upstream_ms * 0.001)
            if any(t.input):
                add_counts(self.tokens("chat", provider, model, "input", tenant), t.input,
                           t.input_sum)
                add_counts(self.tokens("chat", provider, model, "output", tenant), t.output,
                           t.output_sum)
            if t.cached:
                self.cached(tenant, model).inc(t.cached)
            if t.cost:
                self.cost(tenant, model).inc(t.cost)
            if served and served != model:
                self.fallbacks(model, served).inc(t.n)
            if t.refused:
                self.refusals(tenant, outcome).inc(t.refused)

    # --- sampled state ----------------------------------------------------------------------

    def set_breaker(self, deployment: str, state: str) -> None:
        self.breaker(deployment).set(BREAKER_VALUES.get(state, 0.0))

    def set_connections(self, deployment: str, open_connections: int) -> None:
        self.connections(deployment).set(open_connections)

    # --- reading ----------------------------------------------------------------------------

    def _collecting(self) -> CollectorRegistry:
        if self.dir is None:
            return self.registry
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.dir)  # type: ignore[no-untyped-call]
        return merged

    def render(self) -> bytes:
        """The Prometheus text exposition of every worker's metrics (this worker's
        flushed first; the others' as of their last flush, at most a second old)."""
        self.flush()
        return generate_latest(self._collecting())

    def totals(self, *names: str) -> dict[str, float]:
        """The sum over all label sets (and workers) of each named metric's samples:
        ``totals("dragoman_streams_in_flight")`` (for the dashboard)."""
        self.flush()
        out = dict.fromkeys(names, 0.0)
        for family in self._collecting().collect():
            for s in family.samples:
                if s.name in out:
                    out[s.name] += s.value
        return out

    def close(self) -> None:
        """This worker is going away: what it counted is flushed, its live gauges stop
        counting."""
        self.flush()
        if self.dir is not None:
            mark_process_dead(os.getpid(), self.dir)  # type: ignore[no-untyped-call]

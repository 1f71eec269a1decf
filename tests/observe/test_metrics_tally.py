"""``GatewayMetrics.count`` tallies finished requests by label set and ``flush`` adds the
tallies into prometheus_client's metrics: the exposition must be what prometheus_client's
own ``inc``/``observe`` per request gives (the series and their values), over several
label sets, flushes, streams, fallbacks, retries and refusals."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from pytest import approx

from dragoman.core import Usage
from dragoman.observe import GatewayMetrics
from dragoman.router.usage import UsageRecord


def _records() -> list[UsageRecord]:
    recs = []
    for i in range(40):
        stream = i % 3 == 0
        outcome = ("ok", "ok", "upstream", "rate_limited")[i % 4]
        recs.append(UsageRecord(
            tenant=f"t{i % 2}", model="m" if i % 5 else "flaky", provider="openai",
            dialect="openai_chat", stream=stream, passthrough=True,
            usage=Usage(input_tokens=(i * 37) % 5000, output_tokens=i % 7,
                        cached_tokens=i % 3) if outcome == "ok" else Usage(),
            cost=0.001 * i, outcome=outcome, status=200 if outcome == "ok" else 429,
            duration_ms=[0.4, 10.0, 10.5, 333.3, 99999.0][i % 5],
            deployment="m#0", served_model="m",
            ttft_ms=[1.0, 4.2, 9000.0][i % 3] if stream else None,
            upstream_ms=None if outcome == "rate_limited" else 0.01 * i,
            retried=("flaky#0",) if i % 5 == 0 else (), refused=outcome == "rate_limited"))
    return recs


def _per_request(m: GatewayMetrics, r: UsageRecord) -> None:
    """What one request adds, through prometheus_client's own per-value calls."""
    m.requests(r.model, r.deployment, r.provider, r.dialect, str(r.status), r.outcome).inc()
    m.duration("chat", r.provider, r.model, "" if r.outcome == "ok" else r.outcome) \
        .observe(r.duration_ms / 1000)
    if r.ttft_ms is not None:
        m.ttft(r.provider, r.model).observe(r.ttft_ms / 1000)
    if r.upstream_ms is not None:
        m.upstream(r.deployment, r.provider).observe(r.upstream_ms / 1000)
    u = r.usage
    if u.input_tokens or u.output_tokens:
        m.tokens("chat", r.provider, r.model, "input", r.tenant).observe(u.input_tokens)
        m.tokens("chat", r.provider, r.model, "output", r.tenant).observe(u.output_tokens)
    if u.cached_tokens:
        m.cached(r.tenant, r.model).inc(u.cached_tokens)
    if r.cost:
        m.cost(r.tenant, r.model).inc(r.cost)
    for label in r.retried:
        m.retries(label).inc()
    if r.served_model != r.model:
        m.fallbacks(r.model, r.served_model).inc()
    if r.refused:
        m.refusals(r.tenant, r.outcome).inc()


def _samples(m: GatewayMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(m.render().decode())
            for s in f.samples if not s.name.endswith("_created")}


def test_tallies_render_like_one_update_per_request() -> None:
    recs = _records()
    tallied, reference = GatewayMetrics(), GatewayMetrics()
    for r in recs[:25]:
        tallied.count(r)
    tallied.flush()
    for r in recs[25:]:
        tallied.count(r)
    for r in recs:
        _per_request(reference, r)
    got, want = _samples(tallied), _samples(reference)
    assert got.keys() == want.keys()
    assert got == {k: approx(v) for k, v in want.items()}
    assert got[("dragoman_requests_total", (
        ("deployment", "m#0"), ("dialect", "openai_chat"), ("model", "m"),
        ("outcome", "rate_limited"), ("provider", "openai"), ("status", "429")))] == 8
    assert got[("dragoman_retries_total", (("deployment", "flaky#0"),))] == 8
    # A flush with nothing new changes nothing.
    tallied.flush()
    assert _samples(tallied) == got


def test_session_store_timings_are_bucketed_per_operation() -> None:
    tallied, reference = GatewayMetrics(), GatewayMetrics()
    timing = tallied.store_timing()
    for op, seconds in [("append_usage", 0.0004), ("append_usage", 0.003),
                        ("load", 0.0005), ("load", 7.0)]:
        timing(op, seconds)
        reference.store(op).observe(seconds)
    assert _samples(tallied) == _samples(reference)

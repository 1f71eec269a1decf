"""Scenario r's numbers pooled over all its rounds, with a bootstrap interval.

The per-round ratios of ``alternate.py`` take each round's p99 from one 3-second wrk run
(~10,000 requests at one connection: its 100 slowest), less the direct call's p99 from
another run. On the shared 2-core VM one hiccup of the host moves a run's p99 by
milliseconds: two identical gateways (the ``control`` target, an A/A test), 40 rounds,
gave per-round p99 ratios from 0.2 to 5 and a median interval of [0.84-1.20], so no
p99 could be shown within 5 % that way, whatever the code. Pooled, the question is the
one a user asks: of all the requests sent to this target in the whole run, how slow were
the slowest 1 %, against the baseline's, sent in the same rounds?

- **Latency**: each one-connection run's distribution comes from wrk as a grid of
  percentiles (``post.lua``'s ``done``: 0.1 steps from 95 to 99.8, 0.01 above); the
  pooled distribution weighs every run by its requests, and its p50 and p99 are read from
  it (interpolated between grid points). *Added* subtracts the direct call's pooled
  percentile over the same rounds.
- **Throughput**: all requests over all seconds of the target's 64-connection runs; CPU
  per request: all the target's CPU time over all those requests.
- **Interval**: the rounds are resampled with replacement (the same rounds for every
  target and the direct call, so pairing is kept), ``RESAMPLES`` times with a fixed seed,
  and the ratio to the baseline recomputed; the interval is the 5th to 95th percentile of
  those ratios (90 %). The verdict against the budget is the caller's
  (``alternate.verdict``).
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

RESAMPLES = 500
SEED = 17
CONFIDENCE = 0.9
#: fewer rounds than this get no verdict (as the per-round medians: below five rounds no
#: interval of theirs reaches 90 %; a bootstrap of a handful of rounds is overconfident)
MIN_ROUNDS = 5
#: the numbers pooled, as (field, label, higher is better)
FIELDS = (("rps", "req/s @64", True), ("cpu_us_per_req", "CPU µs/req @64", False),
          ("p50_ms", "p50 ms @1", False), ("p99_ms", "p99 ms @1", False),
          ("added_p50_ms", "added p50 ms @1", False),
          ("added_p99_ms", "added p99 ms @1", False))


@dataclass(frozen=True, slots=True)
class Sample:
    """One target's runs in one round: the 64-connection run's requests, seconds and CPU
    seconds, the one-connection run's requests and latency grid (percentile, ms)."""

    sat_requests: int
    sat_seconds: float
    sat_cpu_s: float | None
    one_requests: int
    grid: tuple[tuple[float, float], ...]
    xs: tuple[float, ...]  # the grid's latencies alone, for bisect

    @classmethod
    def of(cls, sat: dict[str, Any] | None, one: dict[str, Any]) -> Sample:
        sat = sat or {"requests": 0, "seconds": 0.0}
        cpu = sat.get("cpu_us_per_req")
        grid, top = [], 0.0
        for pct, ms in one.get("quantiles") or ():
            top = max(top, ms)  # (a quantile function never falls: guard the grid)
            grid.append((pct, top))
        return cls(sat["requests"], sat["seconds"],
                   None if cpu is None else cpu * sat["requests"] / 1e6,
                   one["requests"], tuple(grid), tuple(x for _, x in grid))


def _cdf(grid: Sequence[tuple[float, float]], xs: Sequence[float], x: float) -> float:
    """The share of a run's requests at or under ``x`` ms, interpolated in its grid."""
    i = bisect_right(xs, x)
    if i == 0:
        return 0.0
    if i == len(xs):
        return 1.0
    (p0, x0), (p1, x1) = grid[i - 1], grid[i]
    return (p0 + (p1 - p0) * (x - x0) / (x1 - x0)) / 100  # x0 <= x < x1


def pooled_quantile(samples: Sequence[Sample], q: float) -> float:
    """The ``q`` quantile (0-1) of the one-connection runs of ``samples`` together, each
    weighed by its requests: found by bisection on the pooled distribution function, to
    a microsecond."""
    runs = [(s.one_requests, s.grid, s.xs) for s in samples if s.one_requests and s.grid]
    if not runs:
        return float("nan")
    total = sum(w for w, _, _ in runs)
    lo, hi = min(xs[0] for _, _, xs in runs), max(xs[-1] for _, _, xs in runs)
    while hi - lo > 0.001:
        mid = (lo + hi) / 2
        if sum(w * _cdf(g, xs, mid) for w, g, xs in runs) >= q * total:
            hi = mid
        else:
            lo = mid
    return hi


def measures(samples: Sequence[Sample], direct: Sequence[Sample],
             picks: Sequence[int]) -> dict[str, float]:
    """One target's pooled numbers over the rounds ``picks`` (a round may repeat)."""
    sat_req = sum(samples[i].sat_requests for i in picks)
    sat_s = sum(samples[i].sat_seconds for i in picks)
    cpus = [samples[i].sat_cpu_s for i in picks]
    out = {"rps": sat_req / sat_s if sat_s else float("nan"),
           "cpu_us_per_req": (1e6 * sum(c for c in cpus if c is not None) / sat_req
                              if sat_req and None not in cpus else float("nan"))}
    own = [samples[i] for i in picks]
    base = [direct[i] for i in picks]
    for q, name in ((0.5, "p50_ms"), (0.99, "p99_ms")):
        out[name] = pooled_quantile(own, q)
        out["added_" + name] = out[name] - pooled_quantile(base, q)
    return out


def compare(runs: dict[str, list[Sample]], direct: list[Sample], baseline: str,
            verdict: Callable[[float, float, bool], str]) -> dict[str, Any]:
    """Every target's pooled numbers, and each one's ratio to ``baseline``'s with its
    bootstrap interval and ``verdict(low, high, higher is better)`` on it (the budget's:
    ``alternate.verdict``)."""
    n = len(direct)
    everything = range(n)
    pooled = {k: measures(v, direct, everything) for k, v in runs.items()}
    rng = random.Random(SEED)
    draws = [[rng.randrange(n) for _ in everything] for _ in range(RESAMPLES)]
    ratios: dict[str, Any] = {}
    base_draws = [measures(runs[baseline], direct, d) for d in draws]
    for key, samples in runs.items():
        if key == baseline:
            continue
        own_draws = [measures(samples, direct, d) for d in draws]
        ratios[key] = {}
        for field, _, higher in FIELDS:
            b = pooled[baseline][field]
            if not b > 0:
                continue
            spread = sorted(o[field] / d[field] for o, d in zip(own_draws, base_draws,
                                                               strict=True) if d[field] > 0)
            if not spread:
                continue
            cut = int(len(spread) * (1 - CONFIDENCE) / 2)
            low, high = spread[cut], spread[len(spread) - 1 - cut]
            ratios[key][field] = {"ratio": round(pooled[key][field] / b, 4),
                                  "interval": [round(low, 4), round(high, 4)],
                                  "verdict": verdict(low, high, higher)
                                  if n >= MIN_ROUNDS else "too few rounds"}
    return {"resamples": RESAMPLES, "confidence": CONFIDENCE,
            "pooled": {k: {f: round(v, 4) for f, v in m.items()} for k, m in pooled.items()},
            "ratios": ratios}


def markdown(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The lines of a markdown table (this module's and ``alternate.tables``)."""
    return ["| " + " | ".join(header) + " |", "|---" * len(header) + "|",
            *("| " + " | ".join(row) + " |" for row in rows)]


def number(field: str, value: float) -> str:
    """A measure as the tables print it: req/s with a thousands comma, CPU µs whole."""
    return (f"{value:,.0f}" if field == "rps" else f"{value:.0f}" if field.startswith("cpu")
            else f"{value:.3f}")


def tables(names: dict[str, str], baseline: str, result: dict[str, Any]) -> list[str]:
    header = ["target", *(label for _, label, _ in FIELDS)]

    def cell(q: dict[str, Any] | None) -> str:
        return "-" if q is None else (f"{q['ratio']:.3f} [{q['interval'][0]:.3f}-"
                                      f"{q['interval'][1]:.3f}] {q['verdict']}")

    return ["", "Pooled over all the rounds (bench/pooled.py): every request of a target's "
            "runs together", "",
            *markdown(header, ([names[key], *(number(f, m[f]) for f, _, _ in FIELDS)]
                               for key, m in result["pooled"].items())),
            "", f"Pooled ratios to {names[baseline]}: ratio [bootstrap interval, "
            f"{result['confidence']:.0%}, {result['resamples']} resamples of the rounds] "
            "and the budget", "",
            *markdown(header, ([names[key], *(cell(ratios.get(f)) for f, _, _ in FIELDS)]
                               for key, ratios in result["ratios"].items()))]

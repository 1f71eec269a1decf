"""Scenario r: targets compared in alternating rounds, for differences of a few percent.

Measured one after the other (scenarios a and b), two targets see the machine in two
different moods: on the shared 2-core VM the req/s of two configurations swung ±12 % with
their order alone, so a 5 % budget could be neither shown nor refuted. Here every chosen
target is started once and they take turns: a round runs each target for a few seconds
(wrk -c64: req/s and the target's CPU µs per request; then wrk -c1: p50 and p99, less the
direct call's measured in the same round), the order reversed every other round (A B,
B A, A B, …) so that a drift over the run favours none; the first rounds warm up and are
dropped. Reported: per target, the median over the rounds and the spread (min to max); per
target against the first one (the baseline), the ratio within each round (taken seconds
apart, so the machine's slower swings cancel), its median, and a distribution-free
confidence interval of that median (order statistics of the rounds' ratios, at least
90 %). A 5 % budget is *within* when the whole interval is on the good side of 5 %,
*over* when the whole interval is beyond it, *undecided* otherwise (more rounds, or a
quieter machine); with fewer than five rounds no interval reaches 90 %.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

#: (field, label, higher is better) of each number a round takes per target
METRICS = (("rps", "req/s @64", True), ("cpu_us_per_req", "CPU µs/req @64", False),
           ("added_p50_ms", "added p50 ms @1", False),
           ("added_p99_ms", "added p99 ms @1", False))
BUDGET = 0.05  # issue 17: within 5 % of the baseline
CONFIDENCE = 0.9

Measure = Callable[[Any, int, float], dict[str, Any]]  # (target, connections, seconds)


def median_interval(values: Sequence[float], confidence: float = CONFIDENCE
                    ) -> tuple[float, float, float]:
    """(low, high, coverage): the narrowest interval of order statistics
    ``[x(k+1), x(n-k)]`` that holds the median with probability ≥ ``confidence`` whatever
    the distribution (each value is above the median with probability 1/2: a sign test).
    Six values give [min, max] at 96.9 %, eight [2nd, 7th] at 93.0 %."""
    x = sorted(values)
    n = len(x)
    k, coverage = 0, 1 - 2 * 0.5 ** n
    while True:
        # P(Binomial(n, 1/2) <= k) for the next k
        tail = sum(math.comb(n, i) for i in range(k + 2)) / 2 ** n
        if 1 - 2 * tail < confidence or k + 1 >= n - k - 2:
            break
        k, coverage = k + 1, 1 - 2 * tail
    return x[k], x[n - 1 - k], coverage


def verdict(low: float, high: float, higher_is_better: bool, budget: float = BUDGET) -> str:
    """A ratio's interval against the budget: within, over, or undecided."""
    if higher_is_better:
        return "within" if low >= 1 - budget else "over" if high < 1 - budget else "undecided"
    return "within" if high <= 1 + budget else "over" if low > 1 + budget else "undecided"


def run(targets: Sequence[Any], direct: Any, measure: Measure, *, rounds: int, warmup: int,
        seconds: float, settle: float = 0.0) -> dict[str, Any]:
    """``rounds`` measured rounds after ``warmup`` dropped ones; ``targets[0]`` is the
    baseline of the ratios. ``measure(target, conns, seconds)`` is one wrk run. ``settle``:
    seconds idle after each target's runs (the targets share a core: what one defers to a
    pause, such as the SQLite ledger's fold, would otherwise run during the next one's)."""
    runs: dict[str, list[dict[str, Any]]] = {t.key: [] for t in targets}
    order: list[list[str]] = []
    for r in range(warmup + rounds):
        turn = list(targets) if r % 2 == 0 else list(reversed(targets))
        kept = r >= warmup
        print(f"r: round {r + 1}/{warmup + rounds}{'' if kept else ' (warm-up)'}: "
              + " ".join(t.key for t in turn), file=sys.stderr, flush=True)
        base = measure(direct, 1, seconds)
        took = {}
        for t in turn:
            sat, one = measure(t, 64, seconds), measure(t, 1, seconds)
            time.sleep(settle)
            took[t.key] = {"rps": sat["rps"], "cpu_us_per_req": sat.get("cpu_us_per_req"),
                           "errors": sat["errors"] + one["errors"],
                           "p50_ms": one["p50_ms"], "p99_ms": one["p99_ms"],
                           "added_p50_ms": round(one["p50_ms"] - base["p50_ms"], 4),
                           "added_p99_ms": round(one["p99_ms"] - base["p99_ms"], 4)}
        if kept:
            order.append([t.key for t in turn])
            for key, got in took.items():
                runs[key].append(got)
    baseline = targets[0].key
    return {"seconds": seconds, "rounds": rounds, "warmup": warmup, "baseline": baseline,
            "names": {t.key: t.name for t in targets}, "order": order, "runs": runs,
            "summary": {k: _summary(v) for k, v in runs.items()},
            "ratios": {k: _ratios(v, runs[baseline]) for k, v in runs.items()
                       if k != baseline}}


def _numbers(runs: Sequence[dict[str, Any]], field: str) -> list[float]:
    return [v for r in runs if isinstance(v := r.get(field), (int, float))
            and not math.isnan(v)]


def _summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"errors": sum(r["errors"] for r in runs)}
    for field, _, _ in METRICS:
        if values := _numbers(runs, field):
            out[field] = {"median": round(statistics.median(values), 4),
                          "min": round(min(values), 4), "max": round(max(values), 4)}
    return out


def _ratios(runs: Sequence[dict[str, Any]], base: Sequence[dict[str, Any]]
            ) -> dict[str, Any]:
    """Per metric: this target's number over the baseline's, round by round."""
    out: dict[str, Any] = {}
    for field, _, higher in METRICS:
        per_round = [round(a / b, 4) for r, q in zip(runs, base, strict=True)
                     if isinstance(a := r.get(field), (int, float))
                     and isinstance(b := q.get(field), (int, float)) and b > 0]
        if not per_round:
            continue
        low, high, coverage = median_interval(per_round)
        out[field] = {"per_round": per_round, "median": round(statistics.median(per_round), 4),
                      "interval": [low, high], "confidence": round(coverage, 3),
                      "verdict": verdict(low, high, higher) if coverage >= CONFIDENCE
                      else "too few rounds"}
    return out


def tables(r: dict[str, Any]) -> list[str]:
    names = r["names"]
    lines = ["| target | " + " | ".join(f"{label} median (min-max)"
                                        for _, label, _ in METRICS) + " | errors |",
             "|---" * (len(METRICS) + 2) + "|"]
    for key, s in r["summary"].items():
        cells = []
        for field, _, _ in METRICS:
            m = s.get(field)
            fmt = ",.0f" if field == "rps" else ".0f" if field.startswith("cpu") else ".3f"
            cells.append("-" if m is None else
                         f"{m['median']:{fmt}} ({m['min']:{fmt}}-{m['max']:{fmt}})")
        lines.append(f"| {names[key]} | " + " | ".join(cells) + f" | {s['errors']} |")
    lines += ["", f"Ratios to {names[r['baseline']]} within each round: median "
              f"[interval of the median, its confidence] and the {BUDGET:.0%} budget", "",
              "| target | " + " | ".join(label for _, label, _ in METRICS) + " |",
              "|---" * (len(METRICS) + 1) + "|"]
    for key, ratios in r["ratios"].items():
        cells = []
        for field, _, _ in METRICS:
            q = ratios.get(field)
            cells.append("-" if q is None else
                         f"{q['median']:.3f} [{q['interval'][0]:.3f}-{q['interval'][1]:.3f}, "
                         f"{q['confidence']:.0%}] {q['verdict']}")
        lines.append(f"| {names[key]} | " + " | ".join(cells) + " |")
    return lines

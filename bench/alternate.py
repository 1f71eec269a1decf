"""Scenario r: targets compared in alternating rounds, for differences of a few percent.

Measured one after the other (scenarios a and b), two targets see the machine in two
different moods: on the shared 2-core VM the req/s of two configurations swung ±12 % with
their order alone, so a 5 % budget could be neither shown nor refuted. Here every chosen
target is started (once, or again every ``restart_every`` rounds: see ``run``) and they
take turns: a round runs each target for a few seconds
(wrk -c64: req/s and the target's CPU µs per request; then wrk -c1: p50 and p99, less the
direct call's measured in the same round), the order reversed every other round (A B,
B A, A B, …) so that a drift over the run favours none; the first rounds warm up and are
dropped. Reported: per target, the median over the rounds and the spread (min to max); per
target against the first one (the baseline), the ratio within each round (taken seconds
apart, so the machine's slower swings cancel), its median, and a distribution-free
confidence interval of that median (order statistics of the rounds' ratios, at least
90 %). A 5 % budget is *within* when the whole interval is on the good side of 5 %,
*over* when the whole interval is beyond it, *undecided* otherwise (more rounds, or a
quieter machine); with fewer than five rounds no interval reaches 90 %. The same numbers
pooled over all rounds, with a bootstrap interval, follow (``pooled.py``). What the
harness resolves on a given day is shown by the ``control`` target (bare again: an A/A
test; bench/README.md, "What the harness resolves").
"""

from __future__ import annotations

import contextlib
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import pooled
from pooled import Sample, markdown, number

#: (field, label, higher is better) of each number a round takes per target
METRICS = (("rps", "req/s @64", True), ("cpu_us_per_req", "CPU µs/req @64", False),
           ("added_p50_ms", "added p50 ms @1", False),
           ("added_p99_ms", "added p99 ms @1", False))
BUDGET = 0.05  # issue 17: within 5 % of the baseline
CONFIDENCE = 0.9

Measure = Callable[[Any, int, float], dict[str, Any]]  # (target, connections, seconds)
Start = Callable[[], AbstractContextManager[Sequence[Any]]]  # the targets, started


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


def run(start: Start, direct: Any, measure: Measure, *, rounds: int, warmup: int,
        seconds: float, settle: float = 0.0, restart_every: int = 0) -> dict[str, Any]:
    """``rounds`` measured rounds after ``warmup`` dropped ones. ``start()`` starts the
    targets (warmed up), the first one the baseline of the ratios; ``restart_every``: after
    that many measured rounds they are stopped and started again (0: never). ``measure(
    target, conns, seconds)`` is one wrk run. ``settle``: seconds idle after each target's
    runs (the targets share a core: what one defers to a pause, such as the SQLite
    ledger's fold, would otherwise run during the next one's).

    Why restart: each target is one process, and two processes of the same code differ
    for their whole life by a few percent (memory layout, hash seeds: the ``control``
    target, an A/A test, came out 0.98x and 1.03x bare's in two 40-round runs, its interval
    excluding 1 for the p50), which no number of rounds of the same processes averages
    away. Restarted every few rounds, the rounds sample the processes too."""
    direct_samples: list[Sample] = []
    order: list[list[str]] = []
    starts = 1
    with contextlib.ExitStack() as running:
        targets = running.enter_context(start())
        runs: dict[str, list[dict[str, Any]]] = {t.key: [] for t in targets}
        samples: dict[str, list[Sample]] = {t.key: [] for t in targets}  # for pooled.py
        for r in range(warmup + rounds):
            if restart_every and r > warmup and (r - warmup) % restart_every == 0:
                print("r: restarting the targets", file=sys.stderr, flush=True)
                running.close()  # (an ExitStack can be used again once closed)
                targets = running.enter_context(start())
                starts += 1
            turn = list(targets) if r % 2 == 0 else list(reversed(targets))
            kept = r >= warmup
            print(f"r: round {r + 1}/{warmup + rounds}{'' if kept else ' (warm-up)'}: "
                  + " ".join(t.key for t in turn), file=sys.stderr, flush=True)
            base = measure(direct, 1, seconds)
            took = {}
            for t in turn:
                sat, one = measure(t, 64, seconds), measure(t, 1, seconds)
                time.sleep(settle)
                took[t.key] = ({"rps": sat["rps"], "cpu_us_per_req": sat.get("cpu_us_per_req"),
                                "errors": sat["errors"] + one["errors"],
                                "p50_ms": one["p50_ms"], "p99_ms": one["p99_ms"],
                                "added_p50_ms": round(one["p50_ms"] - base["p50_ms"], 4),
                                "added_p99_ms": round(one["p99_ms"] - base["p99_ms"], 4)},
                               Sample.of(sat, one))
            if kept:
                order.append([t.key for t in turn])
                direct_samples.append(Sample.of(None, base))
                for key, (got, sample) in took.items():
                    runs[key].append(got)
                    samples[key].append(sample)
    baseline = targets[0].key
    return {"seconds": seconds, "rounds": rounds, "warmup": warmup, "baseline": baseline,
            "restart_every": restart_every, "starts": starts,
            "names": {t.key: t.name for t in targets}, "order": order, "runs": runs,
            "summary": {k: _summary(v) for k, v in runs.items()},
            "ratios": {k: _ratios(v, runs[baseline]) for k, v in runs.items()
                       if k != baseline},
            "pooled": pooled.compare(samples, direct_samples, baseline, verdict)
            if rounds and all(s.grid for s in direct_samples) else None}


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

    def spread(m: dict[str, float] | None, field: str) -> str:
        return "-" if m is None else (f"{number(field, m['median'])} ({number(field, m['min'])}"
                                      f"-{number(field, m['max'])})")

    def cell(q: dict[str, Any] | None) -> str:
        return "-" if q is None else (f"{q['median']:.3f} [{q['interval'][0]:.3f}-"
                                      f"{q['interval'][1]:.3f}, {q['confidence']:.0%}] "
                                      f"{q['verdict']}")

    lines = markdown(["target", *(f"{label} median (min-max)" for _, label, _ in METRICS),
                      "errors"],
                     ([names[key], *(spread(s.get(f), f) for f, _, _ in METRICS),
                       str(s["errors"])] for key, s in r["summary"].items()))
    lines += ["", f"Ratios to {names[r['baseline']]} within each round: median "
              f"[interval of the median, its confidence] and the {BUDGET:.0%} budget", "",
              *markdown(["target", *(label for _, label, _ in METRICS)],
                        ([names[key], *(cell(ratios.get(f)) for f, _, _ in METRICS)]
                         for key, ratios in r["ratios"].items()))]
    if r.get("pooled"):
        lines += pooled.tables(names, r["baseline"], r["pooled"])
    return lines

"""Scenario r's pooled numbers (bench/pooled.py): the latency grid wrk prints is parsed
in order, the pooled quantile of runs is the quantile of all their requests together
(each run weighed by its requests), and the bootstrap ratio of two identical targets is 1
with an interval around it while a target twice as slow is decided over the budget."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

# appended, not prepended: bench/profile.py must not shadow the standard library's
sys.path.append(str(Path(__file__).resolve().parents[2] / "bench"))

import alternate
import pooled
from load import parse
from pooled import Sample

#: the end of a real wrk 4 report with post.lua's ``done`` line (grid shortened)
WRK_OUT = """Running 3s test @ http://127.0.0.1:8765/
  1 threads and 1 connections
  Latency Distribution
     50%  522.00us
     99%    0.90ms
  2990 requests in 3.00s, 10.00MB read
Requests/sec:    996.12
Transfer/sec:      3.33MB
quantiles 1:247 2:275 50:522 99:900 99.99:990 100:1000
"""


def _grid(values: list[float]) -> tuple[tuple[float, float], ...]:
    """The grid post.lua prints, computed from known latencies (ms)."""
    xs = sorted(values)
    cells = [p / 2 for p in range(2, 200)] + [99.5 + i / 10 for i in range(5)] + [100.0]
    return tuple((p, xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs)) - 1))])
                 for p in cells)


def _sample(values: list[float], rps: float = 1000.0) -> Sample:
    return Sample.of({"requests": int(rps * 3), "seconds": 3.0, "cpu_us_per_req": 250.0},
                     {"requests": len(values), "quantiles": _grid(values)})


def test_the_grid_is_parsed_in_order_and_kept_out_of_the_report() -> None:
    got = parse(WRK_OUT)
    assert got.requests == 2990 and got.p99_ms == 0.9
    assert got.quantiles[0] == (1.0, 0.247) and got.quantiles[-1] == (100.0, 1.0)
    assert "quantiles" not in got.as_dict()


def test_a_grid_that_falls_is_guarded() -> None:
    # (wrk 4's percentile(100) answers 0: post.lua prints the maximum instead)
    s = Sample.of(None, {"requests": 10, "quantiles": ((50.0, 1.0), (99.0, 2.0),
                                                       (100.0, 0.0))})
    assert s.xs == (1.0, 2.0, 2.0)


def test_pooled_quantile_is_the_quantile_of_all_requests() -> None:
    rng = random.Random(3)
    fast = [rng.uniform(0.2, 0.4) for _ in range(9000)]
    slow = [rng.uniform(0.2, 0.4) for _ in range(2000)] + [5.0] * 100
    both = sorted(fast + slow)
    for q in (0.5, 0.99):
        want = both[int(q * len(both))]
        got = pooled.pooled_quantile([_sample(fast), _sample(slow)], q)
        assert got == pytest.approx(want, rel=0.02)
    # weighed by requests: the slow run's 5 ms tail, 5 % of its requests, is 0.9 % of all
    assert pooled.pooled_quantile([_sample(fast), _sample(slow)], 0.99) < 5.0


def test_identical_targets_pool_to_one_and_a_slower_one_is_over() -> None:
    rng = random.Random(5)
    rounds = 30
    direct, same, other, slow = [], [], [], []
    for _ in range(rounds):
        mood = rng.uniform(0.8, 1.5)  # the machine's speed this round, shared by all
        direct.append(_sample([mood * rng.uniform(0.05, 0.1) for _ in range(3000)]))
        same.append(_sample([mood * rng.uniform(0.3, 0.6) for _ in range(3000)],
                            rps=3000 / mood))
        other.append(_sample([mood * rng.uniform(0.3, 0.6) for _ in range(3000)],
                             rps=3000 / mood))
        slow.append(_sample([mood * rng.uniform(0.6, 1.2) for _ in range(3000)],
                            rps=1500 / mood))
    got = pooled.compare({"a": same, "b": other, "c": slow}, direct, "a", alternate.verdict)
    b, c = got["ratios"]["b"], got["ratios"]["c"]
    for field in ("rps", "p50_ms", "p99_ms", "added_p99_ms"):
        low, high = b[field]["interval"]
        assert low <= 1.0 <= high and b[field]["ratio"] == pytest.approx(1.0, abs=0.05)
    assert c["rps"]["verdict"] == "over" and c["rps"]["ratio"] == pytest.approx(0.5, abs=0.02)
    assert c["p99_ms"]["verdict"] == "over" and c["p99_ms"]["ratio"] == pytest.approx(2.0,
                                                                                      rel=0.05)
    assert "pooled" in pooled.tables({"a": "A", "b": "B", "c": "C"}, "a", got)[1].lower()

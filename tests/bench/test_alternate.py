"""Scenario r's rounds (bench/alternate.py): targets measured in alternating order, the
warm-up rounds dropped, and with ``restart_every`` the targets stopped and started again
between rounds, every round's numbers kept under the same target key."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# appended, not prepended: bench/profile.py must not shadow the standard library's
sys.path.append(str(Path(__file__).resolve().parents[2] / "bench"))

import alternate


@dataclass
class _Target:
    key: str
    name: str
    process: int  # which start of the targets this is


def test_restarts_sample_new_processes_and_keep_every_round() -> None:
    starts: list[int] = []
    stopped: list[int] = []
    measured: list[tuple[str, int, int]] = []

    @contextmanager
    def start() -> Iterator[list[_Target]]:
        starts.append(len(starts))
        n = starts[-1]
        try:
            yield [_Target("a", "A", n), _Target("b", "B", n)]
        finally:
            stopped.append(n)

    def measure(t: Any, conns: int, seconds: float) -> dict[str, Any]:
        process = getattr(t, "process", -1)
        measured.append((getattr(t, "key", "direct"), conns, process))
        slow = 2.0 if getattr(t, "key", "") == "b" else 1.0
        grid = tuple((p, slow * p / 100) for p in (1.0, 50.0, 99.0, 100.0))
        return {"requests": int(100 / slow), "seconds": seconds, "rps": 100 / slow,
                "errors": 0,
                "p50_ms": slow * 0.5, "p99_ms": slow * 0.99, "cpu_us_per_req": 10.0 * slow,
                "quantiles": grid}

    got = alternate.run(start, "direct", measure, rounds=6, warmup=1, seconds=1.0,
                        restart_every=2)
    assert got["starts"] == 3 and starts == [0, 1, 2] and stopped == [0, 1, 2]
    assert [len(v) for v in got["runs"].values()] == [6, 6]
    # rounds 1 (warm-up) + 2 on the first processes, then 2 rounds on each later start
    per_round = [p for k, c, p in measured if k == "a" and c == 64]
    assert per_round == [0, 0, 0, 1, 1, 2, 2]
    assert got["order"][0] == ["b", "a"] and got["order"][1] == ["a", "b"]
    assert got["ratios"]["b"]["rps"]["median"] == 0.5
    assert got["pooled"]["ratios"]["b"]["rps"]["verdict"] == "over"

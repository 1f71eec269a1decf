"""Per-record cost of the operations work, in-process: tallying 1,000 finished requests
into the metrics and flushing them, and building their ledger rows (best of 30, µs per
record).

    .venv/bin/python bench/ops_flush.py

bench/README.md, "Metrics and the usage ledger, counted per request honestly", has the
numbers before and after the ledger rows became tuples.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dragoman.core import Usage
from dragoman.observe import GatewayMetrics
from dragoman.router.usage import UsageRecord
from dragoman.server.operations import ledger_values

RECORDS = 1000


def _records() -> list[UsageRecord]:
    return [UsageRecord(tenant=f"t{i % 3}", model="m", provider="openai",
                        dialect="openai_chat", stream=False, passthrough=True,
                        usage=Usage(input_tokens=10, output_tokens=5), cost=0.001,
                        duration_ms=1.5, deployment="m#0", served_model="m", key_id="k",
                        started=time.time(), upstream_ms=1.0) for i in range(RECORDS)]


def best_us_per_record(work: Callable[[], object], rounds: int = 30) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - t)
    return best / RECORDS * 1e6


def main() -> None:
    recs = _records()
    metrics = GatewayMetrics()

    def tally() -> None:
        for r in recs:
            metrics.count(r)
        metrics.flush()

    flush = best_us_per_record(tally)
    rows = best_us_per_record(lambda: list(map(ledger_values, recs)))
    print(f"metrics tally and flush {flush:.2f} µs/record, ledger rows {rows:.2f} µs/record")


if __name__ == "__main__":
    main()

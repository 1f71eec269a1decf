"""The dashboard's time series, computed from usage ledger rows: requests and errors by
kind, latency and time-to-first-token percentiles, tokens and cost per tenant and per
model, in fixed steps. Pure functions over data (the server reads the rows)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Protocol


class LedgerEntry(Protocol):
    """What ``series`` reads of a ledger row (``dragoman.sessions.usage.UsageRow``)."""

    @property
    def ts(self) -> int: ...
    @property
    def tenant(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def latency_ms(self) -> float: ...
    @property
    def ttft_ms(self) -> float | None: ...
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def cost(self) -> float: ...


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


PERCENTILES = (50, 90, 99)


def series(rows: Iterable[LedgerEntry], since_ms: int, until_ms: int,
           step_ms: int) -> dict[str, Any]:
    """Per step ``[since + i·step, since + (i+1)·step)``: ``t`` (step start, seconds),
    ``requests``, ``errors`` (by outcome), ``latency_ms``/``ttft_ms`` (p50, p90, p99),
    ``tokens``/``cost`` by tenant and by model. Lists are aligned with ``t``; a step
    without requests has ``None`` percentiles (a gap in a chart, not a zero)."""
    n = max(1, math.ceil((until_ms - since_ms) / step_ms))
    requests = [0] * n
    errors: dict[str, list[int]] = {}
    latencies: list[list[float]] = [[] for _ in range(n)]
    ttfts: list[list[float]] = [[] for _ in range(n)]
    tokens: dict[str, dict[str, list[int]]] = {"tenant": {}, "model": {}}
    cost: dict[str, dict[str, list[float]]] = {"tenant": {}, "model": {}}
    for r in rows:
        i = (r.ts - since_ms) // step_ms
        if not 0 <= i < n:
            continue
        requests[i] += 1
        if r.outcome != "ok":
            errors.setdefault(r.outcome, [0] * n)[i] += 1
        latencies[i].append(r.latency_ms)
        if r.ttft_ms is not None:
            ttfts[i].append(r.ttft_ms)
        for by, key in (("tenant", r.tenant), ("model", r.model)):
            tokens[by].setdefault(key, [0] * n)[i] += r.input_tokens + r.output_tokens
            cost[by].setdefault(key, [0.0] * n)[i] += r.cost
    return {
        "t": [(since_ms + i * step_ms) / 1000 for i in range(n)],
        "requests": requests,
        "errors": errors,
        "latency_ms": _percentiles(latencies),
        "ttft_ms": _percentiles(ttfts),
        "tokens": tokens,
        "cost": cost,
    }


def _percentiles(samples: list[list[float]]) -> dict[str, list[float | None]]:
    out: dict[str, list[float | None]] = {f"p{q}": [] for q in PERCENTILES}
    for values in samples:
        values.sort()
        for q in PERCENTILES:
            out[f"p{q}"].append(percentile(values, q))
    return out

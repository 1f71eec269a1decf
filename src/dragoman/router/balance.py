"""Which deployment of a route takes the next attempt.

``weighted``: a random pick in proportion to ``weight``. ``least_outstanding``: the
fewest requests in flight on this worker (ties by weight). ``latency``: the lowest
recent time to first answer; a deployment not measured yet is tried first, so every
deployment gets measured.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from .table import Balance, Deployment

_RNG = random.Random()


def _weighted(candidates: Sequence[Deployment], rng: random.Random) -> Deployment:
    if len(candidates) == 1:
        return candidates[0]
    total = sum(max(d.weight, 0.0) for d in candidates)
    if total <= 0:
        return rng.choice(list(candidates))
    x = rng.random() * total
    for d in candidates:
        x -= max(d.weight, 0.0)
        if x < 0:
            return d
    return candidates[-1]


def pick(strategy: Balance, candidates: Sequence[Deployment],
         rng: random.Random | None = None) -> Deployment:
    """One of ``candidates`` (not empty)."""
    r = rng or _RNG
    if len(candidates) == 1:
        return candidates[0]
    if strategy == "least_outstanding":
        low = min(d.health.inflight for d in candidates)
        return _weighted([d for d in candidates if d.health.inflight == low], r)
    if strategy == "latency":
        unmeasured = [d for d in candidates if d.health.latency is None]
        if unmeasured:
            return _weighted(unmeasured, r)
        best = min(d.health.latency or 0.0 for d in candidates)
        return _weighted([d for d in candidates if d.health.latency == best], r)
    return _weighted(candidates, r)

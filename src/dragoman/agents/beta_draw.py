"""One Beta(a, b) draw, fast: the tree search's Thompson sampling makes several per
iteration, and ``random.betavariate`` (two ``gammavariate`` calls, each a rejection loop
that recomputes its constants) cost more than the rest of an AB-MCTS iteration.

The search's posteriors start at Beta(1, 1) and only grow, so both parameters are >= 1:
exact closed forms cover a = 1 or b = 1, and Cheng's algorithm BB (R. C. H. Cheng,
"Generating beta variates with nonintegral shape parameters", CACM 21(4), 1978) covers
a, b > 1 with one rejection loop of two uniforms. Anything below 1 falls back to the
standard library. Every draw reads only ``rng``, so a seeded search stays reproducible.
"""

from __future__ import annotations

import random
from math import exp, inf, log, sqrt

_LOG4 = log(4.0)
_ONE_PLUS_LOG5 = 1.0 + log(5.0)


def beta_draw(rng: random.Random, a: float, b: float) -> float:
    """A Beta(``a``, ``b``) variate from ``rng``."""
    if not (a > 1.0 and b > 1.0):  # (Cheng's case, the common one, tested first)
        return _edge_draw(rng, a, b)
    # Cheng's BB on (lo, hi) = (min, max); the draw is of the smaller shape's share.
    # (two assignments, not a conditional tuple: no tuple built and unpacked per draw)
    if a <= b:
        lo = a
        hi = b
    else:
        lo = b
        hi = a
    alpha = lo + hi
    scale = sqrt((alpha - 2.0) / (2.0 * lo * hi - alpha))
    gamma = lo + 1.0 / scale
    while True:
        u1 = rng.random()
        if not 0.0 < u1 < 1.0:
            continue
        u2 = rng.random()
        v = scale * log(u1 / (1.0 - u1))
        w = lo * exp(v) if v < 700.0 else inf
        z = u1 * u1 * u2
        r = gamma * v - _LOG4
        s = lo + r - w
        if s + _ONE_PLUS_LOG5 >= 5.0 * z:
            break
        if z <= 0.0:
            continue
        t = log(z)
        if s > t or r + alpha * log(alpha / (hi + w)) >= t:
            break
    if w == inf:  # (not float("inf"): that parses a string on every draw)
        return 1.0 if lo == a else 0.0
    return w / (hi + w) if lo == a else hi / (hi + w)


def _edge_draw(rng: random.Random, a: float, b: float) -> float:
    """A Beta(``a``, ``b``) variate for a shape of at most 1 (the closed forms, else the
    standard library)."""
    if a == 1.0:
        return 1.0 - rng.random() ** (1.0 / b) if b != 1.0 else rng.random()
    if b == 1.0:
        return rng.random() ** (1.0 / a)
    return rng.betavariate(a, b)

"""Where limit counters live, and the one windowing rule every store applies.

A limit is "at most ``limit`` units (requests, tokens, money) in any ``window`` seconds".
Each counter is split into ``BUCKETS`` buckets of ``window / BUCKETS`` seconds; a unit
charged in bucket ``b`` counts until bucket ``b + BUCKETS`` begins. A unit therefore
counts for at least a whole window (never fewer: the limit is never exceeded within any
window) and at most one bucket longer (the price of bounded memory per counter).

``acquire`` is all-or-nothing over several counters (a tenant's requests/min, its
tokens/min, a model's requests/min and a budget are charged together or not at all) and
atomic against every other caller of the same store: one event-loop step in process
(``MemoryLimitStore``), one Lua script in Redis (``RedisLimitStore``, many workers and
hosts).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

BUCKETS = 20


@dataclass(frozen=True, slots=True)
class Charge:
    """``amount`` units against counter ``key``, allowed while the window's total stays
    within ``limit``. ``key`` already names what is counted (``t:acme:rpm``); the store
    adds the window to it, so changing a window never reads another window's buckets."""

    key: str
    limit: float
    window: float
    amount: float


@dataclass(frozen=True, slots=True)
class Held:
    """Where an accepted charge landed, so it can be corrected later (``adjust``)."""

    key: str
    window: float
    bucket: int


class LimitExceeded(Exception):
    """Charge ``index`` of an ``acquire`` does not fit. ``retry_after``: seconds until it
    would (None: never, the charge alone is larger than its limit)."""

    def __init__(self, index: int, retry_after: float | None, used: float) -> None:
        super().__init__(f"limit {index} exceeded")
        self.index = index
        self.retry_after = retry_after
        self.used = used


@runtime_checkable
class LimitStore(Protocol):
    async def acquire(self, charges: Sequence[Charge]) -> list[Held]:
        """Charge all or none; raise ``LimitExceeded`` for the first that does not fit."""
        ...

    async def adjust(self, held: Held, delta: float) -> None:
        """Add ``delta`` (may be negative: a reservation settled lower) to the bucket an
        earlier charge landed in; dropped when that bucket has left the window."""
        ...

    async def add(self, key: str, window: float, amount: float) -> None:
        """Count ``amount`` now without checking the limit (tokens known only after the
        answer, such as output tokens)."""
        ...

    async def used(self, key: str, window: float) -> float:
        """The counter's total over the current window."""
        ...

    async def ping(self) -> None:
        """Raise if the store cannot be reached (``/readyz``)."""
        ...

    async def aclose(self) -> None: ...


def bucket_width(window: float) -> float:
    return window / BUCKETS


def bucket_of(now: float, window: float) -> int:
    return math.floor(now / bucket_width(window))


def storage_key(key: str, window: float) -> str:
    return f"{key}:{window:g}"


def retry_after(buckets: dict[int, float], current: int, window: float, limit: float,
                amount: float, now: float) -> float | None:
    """Seconds until ``amount`` fits: the oldest buckets leave the window one by one."""
    if amount > limit:
        return None
    total = sum(buckets.values())
    width = bucket_width(window)
    for b in sorted(buckets):
        total -= buckets[b]
        if total + amount <= limit:
            return max(0.0, (b + BUCKETS) * width - now)
    return max(0.0, (current + BUCKETS) * width - now)  # unreachable unless amounts < 0


class MemoryLimitStore:
    """One worker's counters, in its memory. ``acquire`` never awaits between checking and
    charging, so concurrent requests of this event loop cannot both take the last unit."""

    def __init__(self, clock: object = time.time) -> None:
        self._clock = clock
        self._counters: dict[str, dict[int, float]] = {}

    def _now(self) -> float:
        return self._clock()  # type: ignore[operator]

    def _live(self, key: str, window: float, current: int) -> dict[int, float]:
        skey = storage_key(key, window)
        buckets = self._counters.get(skey)
        if buckets is None:
            buckets = self._counters[skey] = {}
        else:
            for b in [b for b in buckets if b <= current - BUCKETS]:
                del buckets[b]
        return buckets

    async def acquire(self, charges: Sequence[Charge]) -> list[Held]:
        now = self._now()
        live = []
        pending: dict[str, float] = {}
        for i, c in enumerate(charges):
            current = bucket_of(now, c.window)
            buckets = self._live(c.key, c.window, current)
            # The same counter twice in one acquire: the earlier charge counts against the
            # later, or together they could pass a limit each fits alone.
            skey = storage_key(c.key, c.window)
            before = pending.get(skey, 0.0)
            used = sum(buckets.values()) + before
            if used + c.amount > c.limit:
                view = {**buckets, current: buckets.get(current, 0.0) + before} \
                    if before else buckets
                raise LimitExceeded(i, retry_after(view, current, c.window, c.limit,
                                                   c.amount, now), used)
            pending[skey] = before + c.amount
            live.append((buckets, current))
        held = []
        for c, (buckets, current) in zip(charges, live, strict=True):
            buckets[current] = buckets.get(current, 0.0) + c.amount
            held.append(Held(c.key, c.window, current))
        return held

    async def adjust(self, held: Held, delta: float) -> None:
        current = bucket_of(self._now(), held.window)
        if held.bucket <= current - BUCKETS:
            return
        buckets = self._live(held.key, held.window, current)
        buckets[held.bucket] = max(0.0, buckets.get(held.bucket, 0.0) + delta)

    async def add(self, key: str, window: float, amount: float) -> None:
        current = bucket_of(self._now(), window)
        buckets = self._live(key, window, current)
        buckets[current] = buckets.get(current, 0.0) + amount

    async def used(self, key: str, window: float) -> float:
        return sum(self._live(key, window, bucket_of(self._now(), window)).values())

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._counters.clear()

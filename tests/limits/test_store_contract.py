"""What every LimitStore promises, checked on the in-process store and on real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest

from dragoman.router.limits import BUCKETS, Charge, LimitExceeded, LimitStore, MemoryLimitStore

SHORT = 0.4  # seconds: a window short enough to watch expire
LONG = 60.0  # seconds: a window nothing in a test outlives


async def refused(store: LimitStore, charges: list[Charge]) -> LimitExceeded:
    with pytest.raises(LimitExceeded) as info:
        await store.acquire(charges)
    return info.value


async def poll_until_accepted(store: LimitStore, charges: list[Charge],
                              timeout: float = 5.0) -> float:
    """Retry until the store accepts; the seconds it took."""
    start = time.monotonic()
    while True:
        try:
            await store.acquire(charges)
            return time.monotonic() - start
        except LimitExceeded:
            if time.monotonic() - start > timeout:
                raise
            await asyncio.sleep(0.02)


async def test_all_or_nothing_over_several_counters(store: LimitStore) -> None:
    await store.acquire([Charge("b", 2, LONG, 2)])
    e = await refused(store, [Charge("a", 10, LONG, 1), Charge("b", 2, LONG, 1),
                              Charge("c", 10, LONG, 1)])
    assert (e.index, e.used) == (1, 2)
    # Nothing of the refused acquire was charged, not even the counters that fitted.
    assert await store.used("a", LONG) == 0
    assert await store.used("b", LONG) == 2
    assert await store.used("c", LONG) == 0

    held = await store.acquire([Charge("a", 10, LONG, 3), Charge("c", 10, LONG, 4.5)])
    assert [(h.key, h.window) for h in held] == [("a", LONG), ("c", LONG)]
    assert held[0].bucket == held[1].bucket  # same window, same moment
    assert await store.used("a", LONG) == 3
    assert await store.used("c", LONG) == 4.5


async def test_refusal_names_the_first_failing_charge(store: LimitStore) -> None:
    await store.acquire([Charge("x", 1, LONG, 1), Charge("y", 1, LONG, 1)])
    e = await refused(store, [Charge("ok", 5, LONG, 1), Charge("x", 1, LONG, 1),
                              Charge("y", 1, LONG, 1)])
    assert e.index == 1 and e.used == 1


async def test_retry_after_is_when_the_charged_bucket_leaves_the_window(
        store: LimitStore) -> None:
    await store.acquire([Charge("r", 3, LONG, 3)])
    e = await refused(store, [Charge("r", 3, LONG, 1)])
    width = LONG / BUCKETS
    # Charged in the current bucket, which leaves the window between one window and one
    # window less a bucket from now (a little less again for the time this test took).
    assert e.retry_after is not None
    assert LONG - width - 5 < e.retry_after <= LONG
    assert e.used == 3


async def test_a_charge_larger_than_its_limit_never_fits(store: LimitStore) -> None:
    await store.acquire([Charge("big", 10, LONG, 4)])
    e = await refused(store, [Charge("big", 10, LONG, 11)])
    assert (e.index, e.retry_after, e.used) == (0, None, 4)
    e = await refused(store, [Charge("fresh", 10, LONG, 10.5)])
    assert (e.index, e.retry_after, e.used) == (0, None, 0)


async def test_same_counter_twice_in_one_acquire_adds_up(store: LimitStore) -> None:
    e = await refused(store, [Charge("twice", 3, LONG, 2), Charge("twice", 3, LONG, 2)])
    assert (e.index, e.used) == (1, 2)
    assert e.retry_after is not None and e.retry_after > 0
    assert await store.used("twice", LONG) == 0
    await store.acquire([Charge("twice", 3, LONG, 2), Charge("twice", 3, LONG, 1)])
    assert await store.used("twice", LONG) == 3


async def test_windows_are_separate_counters(store: LimitStore) -> None:
    await store.acquire([Charge("w", 5, LONG, 5)])
    await store.acquire([Charge("w", 5, 2 * LONG, 5)])
    assert await store.used("w", LONG) == 5
    assert await store.used("w", 2 * LONG) == 5


async def test_adjust_up_down_and_never_below_zero(store: LimitStore) -> None:
    [held] = await store.acquire([Charge("adj", 10, LONG, 5)])
    await store.adjust(held, -3)
    assert await store.used("adj", LONG) == 2
    await store.adjust(held, 4)
    assert await store.used("adj", LONG) == 6
    await store.adjust(held, -100)
    assert await store.used("adj", LONG) == 0
    await store.acquire([Charge("adj", 10, LONG, 10)])  # the whole limit is free again


async def test_add_counts_without_checking(store: LimitStore) -> None:
    assert await store.used("tokens", LONG) == 0
    await store.add("tokens", LONG, 15)
    await store.add("tokens", LONG, 0.25)
    assert await store.used("tokens", LONG) == 15.25
    e = await refused(store, [Charge("tokens", 10, LONG, 1)])
    assert e.used == 15.25 and e.retry_after is not None


async def test_fractional_amounts(store: LimitStore) -> None:
    """Money: ten charges of 0.1 fill a limit of 1.0, the eleventh does not fit."""
    for _ in range(10):
        await store.acquire([Charge("usd", 1.0, LONG, 0.1)])
    e = await refused(store, [Charge("usd", 1.0, LONG, 0.1)])
    assert e.used == pytest.approx(1.0)
    assert await store.used("usd", LONG) == pytest.approx(1.0)


async def test_charges_expire_with_the_window(store: LimitStore) -> None:
    await store.acquire([Charge("short", 2, SHORT, 2)])
    e = await refused(store, [Charge("short", 2, SHORT, 1)])
    assert e.retry_after is not None
    assert 0 < e.retry_after <= SHORT + SHORT / BUCKETS
    await poll_until_accepted(store, [Charge("short", 2, SHORT, 2)])
    assert await store.used("short", SHORT) == 2


async def test_adjust_is_dropped_once_the_bucket_left_the_window(store: LimitStore) -> None:
    [held] = await store.acquire([Charge("late", 5, SHORT, 1)])
    deadline = time.monotonic() + 5
    while await store.used("late", SHORT) > 0:
        assert time.monotonic() < deadline, "the charge never left the window"
        await asyncio.sleep(0.02)
    await store.adjust(held, 3)
    assert await store.used("late", SHORT) == 0


async def test_ping(store: LimitStore) -> None:
    await store.ping()


async def test_retry_after_waits_for_enough_old_buckets() -> None:
    """The windowing rule itself, on a clock the test controls (memory store)."""
    now = [1000.0]
    store = MemoryLimitStore(clock=lambda: now[0])
    window = 20.0  # one-second buckets
    await store.acquire([Charge("k", 10, window, 4)])  # bucket 1000, leaves at 1020
    now[0] = 1005.5
    await store.acquire([Charge("k", 10, window, 6)])  # bucket 1005, leaves at 1025
    now[0] = 1010.0
    e = await refused(store, [Charge("k", 10, window, 3)])
    assert e.retry_after == 10.0  # the 4 leaving at 1020 make room for 3
    e = await refused(store, [Charge("k", 10, window, 5)])
    assert e.retry_after == 15.0  # 5 needs both buckets gone
    now[0] = 1020.0
    await store.acquire([Charge("k", 10, window, 4)])
    assert await store.used("k", window) == 10

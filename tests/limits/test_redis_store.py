"""RedisLimitStore beyond the shared contract: exactness across processes and pools, how
counters are kept in Redis, and failures that never reveal the URL's password."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from dragoman.core import TransportError
from dragoman.router.limits import BUCKETS, Charge, LimitExceeded
from dragoman.router.limits.redis_store import RedisLimitStore
from dragoman.router.limits.store import bucket_of, retry_after
from tests.gateway_proc import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


def racer(redis_url: str, prefix: str, n: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.limits.racer", redis_url, prefix, "race", "20", str(n)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_two_processes_never_exceed_the_limit_together(redis_url: str, prefix: str) -> None:
    procs = [racer(redis_url, prefix, 25), racer(redis_url, prefix, 25)]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        counts = [int(p.communicate(timeout=60)[0].strip()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0]
    assert sum(counts) == 20, counts


async def test_two_pools_in_one_process_never_exceed_the_limit(redis_url: str,
                                                               prefix: str) -> None:
    stores = [RedisLimitStore(redis_url, prefix=prefix, pool_size=4) for _ in range(2)]
    try:
        async def one(store: RedisLimitStore) -> bool:
            try:
                await store.acquire([Charge("race", 20, 60.0, 1), Charge("wide", 1000, 60.0, 1)])
            except LimitExceeded as e:
                assert e.index == 0
                return False
            return True

        results = await asyncio.gather(*(one(stores[i % 2]) for i in range(50)))
        assert sum(results) == 20
        # All-or-nothing under contention too: the wide counter took only the accepted.
        assert await stores[0].used("wide", 60.0) == 20
        assert await stores[1].used("race", 60.0) == 20
    finally:
        for s in stores:
            await s.aclose()


async def test_counter_keys_expire_and_drop_old_buckets(redis_url: str, prefix: str,
                                                        raw: aioredis.Redis) -> None:
    store = RedisLimitStore(redis_url, prefix=prefix)
    window = 0.4
    key = f"{prefix}:lim:k:0.4"
    try:
        [held] = await store.acquire([Charge("k", 10, window, 2)])
        assert await raw.hgetall(key) == {str(held.bucket): "2"}
        # Gone from Redis a little after the window (window + one bucket), not kept forever.
        assert 0 < await raw.pttl(key) <= (window + window / BUCKETS) * 1000 + 1
        # A bucket that left the window is deleted by the next write, not just ignored.
        stale = held.bucket - BUCKETS
        await raw.hset(key, str(stale), "7")
        await store.add("k", window, 1)
        assert str(stale) not in await raw.hkeys(key)
        deadline = asyncio.get_running_loop().time() + 5
        while await raw.exists(key):
            assert asyncio.get_running_loop().time() < deadline, "the counter never expired"
            await asyncio.sleep(0.05)
    finally:
        await store.aclose()


async def test_the_url_password_is_used_and_never_shown(redis_url: str, prefix: str) -> None:
    password = urlsplit(redis_url).password
    assert password
    store = RedisLimitStore(redis_url, prefix=prefix)
    try:
        await store.ping()
        assert password not in repr(store) and "127.0.0.1" in repr(store)
    finally:
        await store.aclose()

    wrong = redis_url.replace(password, "not-the-password")
    store = RedisLimitStore(wrong, prefix=prefix)
    try:
        with pytest.raises(TransportError) as info:
            await store.acquire([Charge("k", 1, 60.0, 1)])
        assert "not-the-password" not in str(info.value)
        assert "not-the-password" not in repr(info.value)
        assert str(info.value) == "rate-limit store unreachable: AuthenticationError"
    finally:
        await store.aclose()


async def test_dead_server_is_a_transport_error_without_the_password() -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    store = RedisLimitStore(url)
    try:
        assert "s3cret" not in repr(store)
        with pytest.raises(TransportError) as info:
            await store.ping()
        assert str(info.value) == "rate-limit store unreachable: ConnectionError"
        assert info.value.status == 502
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: store.acquire([Charge("k", 1, 60.0, 1)]),
            lambda: store.add("k", 60.0, 1), lambda: store.used("k", 60.0)]
        for call in calls:
            with pytest.raises(TransportError) as info:
                await call()
            assert "s3cret" not in str(info.value) and "s3cret" not in repr(info.value)
    finally:
        await store.aclose()


async def test_retry_after_follows_the_oldest_buckets_on_redis_time(
        redis_url: str, prefix: str, raw: aioredis.Redis) -> None:
    """The Lua script's retry rule against store.retry_after, on buckets laid out by hand
    around Redis's own clock (the script never reads the caller's)."""
    window, width = 60.0, 60.0 / BUCKETS
    sec, usec = await raw.time()
    now = sec + usec / 1e6
    cur = bucket_of(now, window)
    buckets = {cur - 5: 4.0, cur - 1: 6.0}
    await raw.hset(f"{prefix}:lim:k:60", mapping={str(b): str(v) for b, v in buckets.items()})
    store = RedisLimitStore(redis_url, prefix=prefix)
    try:
        for amount, oldest_needed in ((3, cur - 5), (5, cur - 1)):
            e = await refused(store, Charge("k", 10, window, amount))
            assert e.used == 10
            expected = retry_after(buckets, cur, window, 10, amount, now)
            assert expected is not None
            assert expected == pytest.approx((oldest_needed + BUCKETS) * width - now)
            # Only the moments between reading TIME here and in the script differ.
            assert e.retry_after is not None
            assert expected - 1 < e.retry_after <= expected
    finally:
        await store.aclose()


async def refused(store: RedisLimitStore, charge: Charge) -> LimitExceeded:
    with pytest.raises(LimitExceeded) as info:
        await store.acquire([charge])
    return info.value

"""One contender of the cross-process race (test_redis_store): its own interpreter, event
loop, connection pool and RedisLimitStore.

``python -m tests.limits.racer URL PREFIX KEY LIMIT N`` prints ``ready``, waits for a line
on stdin (the start signal, so both contenders overlap), fires N concurrent acquires of
amount 1, and prints how many were accepted."""

from __future__ import annotations

import asyncio
import sys

from dragoman.router.limits import Charge, LimitExceeded
from dragoman.router.limits.redis_store import RedisLimitStore


async def race(url: str, prefix: str, key: str, limit: float, n: int) -> int:
    store = RedisLimitStore(url, prefix=prefix, pool_size=8)
    try:
        await store.ping()  # connect before the start line, so the race is the acquires
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)

        async def one() -> bool:
            try:
                await store.acquire([Charge(key, limit, 60.0, 1.0)])
            except LimitExceeded:
                return False
            return True

        return sum(await asyncio.gather(*(one() for _ in range(n))))
    finally:
        await store.aclose()


if __name__ == "__main__":
    url, prefix, key, limit, n = sys.argv[1:6]
    print(asyncio.run(race(url, prefix, key, float(limit), int(n))), flush=True)

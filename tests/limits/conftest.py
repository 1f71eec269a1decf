"""Stores for the limits suite: contract tests run on the in-process store and on a real
Redis server (started once per session, see tests/infra/redis.py). Each Redis store gets
its own key prefix, so tests never see each other's counters."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from dragoman.core import new_id
from dragoman.router.limits import LimitStore, MemoryLimitStore
from tests.infra.redis import RedisMissing, running_redis


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    try:
        cm = running_redis()
        url = cm.__enter__()
    except RedisMissing as e:
        if os.environ.get("CI"):
            pytest.fail(f"{e}; scripts/test installs it on CI")
        pytest.skip(str(e))
    try:
        yield url
    finally:
        cm.__exit__(None, None, None)


@pytest.fixture
def prefix() -> str:
    return new_id("t")


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[LimitStore]:
    s: LimitStore
    if request.param == "redis":
        from dragoman.router.limits.redis_store import RedisLimitStore

        s = RedisLimitStore(request.getfixturevalue("redis_url"), prefix=prefix)
    else:
        s = MemoryLimitStore()
    try:
        yield s
    finally:
        await s.aclose()

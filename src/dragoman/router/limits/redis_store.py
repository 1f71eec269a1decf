"""Limit counters in Redis, shared by every worker and host that points at it.

Each counter is one hash (``{prefix}:lim:{key}:{window}``) whose fields are bucket indexes
and whose values are the units charged in that bucket, the same layout and windowing rule
as ``store.py``. Every operation is one Lua script, so checking and charging are atomic
against all other callers, and every script reads the time from Redis (``TIME``) rather
than from the caller, so hosts with skewed clocks still agree on which bucket is current.

Only ``dragoman`` code that has Redis configured imports this module: redis-py is an
optional dependency (the ``redis`` extra).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dragoman.core import TransportError

from .store import BUCKETS, Charge, Held, LimitExceeded, bucket_width, storage_key

# Shared Lua prelude. Numbers cross the boundary as strings: ARGV parsed with tonumber,
# results formatted with %.17g (Lua's tostring keeps only 14 digits), bucket indexes with
# %.0f (they exceed 2^31).
_PRELUDE = f"""
local BUCKETS = {BUCKETS}
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function num(x) return string.format('%.17g', x) end
local function idx(b) return string.format('%.0f', b) end
-- Live buckets of a counter (bucket -> amount), their sum, and the fields that left the
-- window, which the caller deletes.
local function live(key, cur)
  local flat = redis.call('HGETALL', key)
  local buckets, used, stale = {{}}, 0, {{}}
  for j = 1, #flat, 2 do
    local b = tonumber(flat[j])
    if b <= cur - BUCKETS then
      stale[#stale + 1] = flat[j]
    else
      local v = tonumber(flat[j + 1])
      buckets[b] = (buckets[b] or 0) + v
      used = used + v
    end
  end
  return buckets, used, stale
end
"""

# KEYS: one counter per charge. ARGV: per charge limit, window, amount, ttl_ms.
# Returns {1, bucket...} when every charge fits and was made, else
# {0, failing index (0-based), retry_after or false (never fits), used}.
_ACQUIRE = _PRELUDE + """
local cur, pending = {}, {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local limit = tonumber(ARGV[4 * i - 3])
  local window = tonumber(ARGV[4 * i - 2])
  local amount = tonumber(ARGV[4 * i - 1])
  local width = window / BUCKETS
  local c = math.floor(now / width)
  cur[i] = c
  local buckets, used, stale = live(key, c)
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  -- The same counter twice in one acquire: the earlier charge counts against the later.
  local before = pending[key] or 0
  if before ~= 0 then
    buckets[c] = (buckets[c] or 0) + before
    used = used + before
  end
  if used + amount > limit then
    local retry = false
    if amount <= limit then
      -- store.retry_after: the oldest buckets leave the window one by one.
      local order = {}
      for b in pairs(buckets) do order[#order + 1] = b end
      table.sort(order)
      local total, at = used, (c + BUCKETS) * width
      for _, b in ipairs(order) do
        total = total - buckets[b]
        if total + amount <= limit then
          at = (b + BUCKETS) * width
          break
        end
      end
      retry = num(math.max(0, at - now))
    end
    return {0, i - 1, retry, num(used)}
  end
  pending[key] = before + amount
end
local out = {1}
for i = 1, #KEYS do
  redis.call('HINCRBYFLOAT', KEYS[i], idx(cur[i]), ARGV[4 * i - 1])
  redis.call('PEXPIRE', KEYS[i], ARGV[4 * i])
  out[i + 1] = idx(cur[i])
end
return out
"""

# KEYS: the counter. ARGV: window, bucket, delta, ttl_ms. The bucket never drops below 0,
# and a bucket that already left the window is not brought back.
_ADJUST = _PRELUDE + """
local window = tonumber(ARGV[1])
local bucket = tonumber(ARGV[2])
if bucket <= math.floor(now / (window / BUCKETS)) - BUCKETS then return 0 end
local v = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0') + tonumber(ARGV[3])
if v <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[2])
else
  redis.call('HSET', KEYS[1], ARGV[2], num(v))
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return 1
"""

# KEYS: the counter. ARGV: window, amount, ttl_ms. Also drops buckets that left the
# window: a counter only ever added to would otherwise keep every bucket while it lives.
_ADD = _PRELUDE + """
local c = math.floor(now / (tonumber(ARGV[1]) / BUCKETS))
local _, _, stale = live(KEYS[1], c)
if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
redis.call('HINCRBYFLOAT', KEYS[1], idx(c), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS: the counter. ARGV: window. Read-only.
_USED = _PRELUDE + """
local _, used = live(KEYS[1], math.floor(now / (tonumber(ARGV[1]) / BUCKETS)))
return num(used)
"""


def _ttl_ms(window: float) -> str:
    """A counter outlives its newest bucket's stay in the window: window + one bucket."""
    return str(math.ceil((window + bucket_width(window)) * 1000) + 1)


def _redacted(url: str) -> str:
    """The URL without credentials or query (which may carry ``password=``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    return f"{parts.scheme}://{host}{port}{parts.path}"


class RedisLimitStore:
    """``LimitStore`` over one Redis server (or its proxy), shared by many workers/hosts.

    Connection errors become ``TransportError`` naming only the exception class: the URL,
    and so anything built from it, may hold a password.
    """

    def __init__(self, url: str, *, prefix: str = "dragoman", pool_size: int = 32) -> None:
        self._where = _redacted(url)
        self._prefix = prefix
        # One quick retry: enough to replace a pooled connection the server closed while
        # idle, not so many that a dead Redis stalls every request for seconds. (A retried
        # script whose reply was lost may charge twice: over-counting, the safe side.)
        # Blocking pool: a burst beyond pool_size waits for a connection, not fails.
        pool = BlockingConnectionPool.from_url(
            url, max_connections=pool_size, timeout=5, decode_responses=True,
            socket_connect_timeout=2, socket_timeout=5,
            retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.05), retries=1))
        self._redis: Redis = Redis.from_pool(pool)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._adjust = self._redis.register_script(_ADJUST)
        self._add = self._redis.register_script(_ADD)
        self._used = self._redis.register_script(_USED)

    def __repr__(self) -> str:
        return f"RedisLimitStore({self._where!r}, prefix={self._prefix!r})"

    def _key(self, key: str, window: float) -> str:
        return f"{self._prefix}:lim:{storage_key(key, window)}"

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError, OSError) as e:
            raise TransportError(f"rate-limit store unreachable: {type(e).__name__}") from e
        except RedisError as e:  # OOM, READONLY after a failover, ...
            raise TransportError(f"rate-limit store failed: {type(e).__name__}") from e

    async def acquire(self, charges: Sequence[Charge]) -> list[Held]:
        if not charges:
            return []
        keys = [self._key(c.key, c.window) for c in charges]
        args: list[str] = []
        for c in charges:
            args += [repr(float(c.limit)), repr(float(c.window)), repr(float(c.amount)),
                     _ttl_ms(c.window)]
        async with self._guard():
            reply = await self._acquire(keys=keys, args=args)
        if int(reply[0]) != 1:
            _, index, retry, used = reply
            raise LimitExceeded(int(index), None if retry is None else float(retry),
                                float(used))
        return [Held(c.key, c.window, int(b)) for c, b in zip(charges, reply[1:], strict=True)]

    async def adjust(self, held: Held, delta: float) -> None:
        async with self._guard():
            await self._adjust(keys=[self._key(held.key, held.window)],
                               args=[repr(float(held.window)), str(held.bucket),
                                     repr(float(delta)), _ttl_ms(held.window)])

    async def add(self, key: str, window: float, amount: float) -> None:
        async with self._guard():
            await self._add(keys=[self._key(key, window)],
                            args=[repr(float(window)), repr(float(amount)), _ttl_ms(window)])

    async def used(self, key: str, window: float) -> float:
        async with self._guard():
            reply = await self._used(keys=[self._key(key, window)], args=[repr(float(window))])
        return float(reply)

    async def ping(self) -> None:
        async with self._guard():
            await self._redis.ping()

    async def aclose(self) -> None:
        await self._redis.aclose()

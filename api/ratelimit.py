"""Request rate per API key: a token bucket per key (``MEDKG_API_RATE_PER_S`` refill, ``MEDKG_API_BURST``
size).

Two kinds, chosen at start-up (``api.app.build_services``), both answering ``await buckets.atake(key_id)``:

* :class:`SharedBuckets`: the bucket lives in Redis/Valkey (``REDIS_URL``, or the embedded feed buffer when
  one is configured), updated atomically by one Lua script, so every process of ``medkg serve --workers N``
  (and every server behind one load balancer) draws from the same bucket: a key gets its rate once, not once
  per worker. While the store is unreachable each process falls back to its own bucket for a few seconds and
  then tries again (the limit protects the service; it must not take it down).
* :class:`TokenBuckets`: in memory, per process. Correct for one process; with several workers each allows
  the full rate (the start-up log says so). A restart forgives everyone, which is fine for a limit meant to
  protect the service, not to bill anybody.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable

log = logging.getLogger("medkg.api")

# KEYS[1] the bucket (a hash: tokens, ts); ARGV rate per s, burst. The server's clock (TIME), so processes with
# skewed clocks agree. Returns the wait in seconds as a string (0 when the request may go now).
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(v[1]) or burst
local ts = tonumber(v[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""
PREFIX = "medkg:ratelimit:"


def retry_after(wait_s: float) -> str:
    return str(max(1, math.ceil(wait_s)))


class TokenBuckets:
    shared = False

    def __init__(self, rate_per_s: float, burst: int):
        self.rate, self.burst = rate_per_s, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 if a request may go now, else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate

    async def atake(self, key: str) -> float:
        return self.take(key)

    async def aclose(self) -> None:
        return None

    retry_after = staticmethod(retry_after)


class SharedBuckets:
    """Token buckets in Redis/Valkey. ``url`` is called (in a thread) whenever a connection is (re)made: the
    embedded Valkey comes back on a new port after a restart."""

    shared = True
    RETRY_S = 5.0  # after a failure, this long on the local bucket before the store is tried again

    def __init__(self, rate_per_s: float, burst: int, url: Callable[[], str], where: str = "redis",
                 timeout_s: float = 0.5):
        self.rate, self.burst, self.url, self.where, self.timeout_s = rate_per_s, burst, url, where, timeout_s
        self.local = TokenBuckets(rate_per_s, burst)
        self._client = self._script = None
        self._down_until = 0.0

    async def _take_shared(self, key: str) -> float:
        if self._client is None:
            import redis.asyncio as aredis

            url = await asyncio.to_thread(self.url)
            self._client = aredis.Redis.from_url(url, socket_timeout=self.timeout_s,
                                                 socket_connect_timeout=self.timeout_s)
            self._script = self._client.register_script(_TAKE)
        return float(await self._script(keys=[PREFIX + key], args=[self.rate, self.burst]))

    async def atake(self, key: str) -> float:
        if time.monotonic() >= self._down_until:
            try:
                return await self._take_shared(key)
            except Exception as exc:  # noqa: BLE001 - any store failure: the local bucket, never a 500
                self._down_until = time.monotonic() + self.RETRY_S
                client, self._client, self._script = self._client, None, None
                if client is not None:
                    try:
                        await client.aclose()
                    except Exception:  # noqa: BLE001, S110 - closing a broken client
                        pass
                log.warning("rate limit: %s unreachable (%s); per-process buckets for %gs",
                            self.where, type(exc).__name__, self.RETRY_S)
        return self.local.take(key)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    retry_after = staticmethod(retry_after)

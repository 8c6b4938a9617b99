"""Coordination between bot processes: "first delivery?" checks and named locks.

With REDIS_URL it is Redis (`SET NX EX`, redis-py's Lock) so two replicas agree; without it an
in-process equivalent behind the same interface serves a single replica. If Redis stops
answering, the Redis flavour falls back to in-process answers and says so in logs and metrics:
duplicates across replicas become possible, but the bot keeps working.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import LockError, RedisError

from bot.logs import get_logger

log = get_logger(__name__)


class LockUnavailable(Exception):
    """Another holder kept the lock for longer than we were willing to wait."""


class Coordinator(Protocol):
    """What handlers and services need to agree on across processes."""

    backend: str

    async def first_delivery(self, key: str, ttl_seconds: int) -> bool:
        """True exactly once per key within the TTL: the caller should handle this delivery."""
        ...

    def lock(
        self, name: str, *, ttl_seconds: float, wait_seconds: float
    ) -> AbstractAsyncContextManager[None]:
        """Hold a named lock (one holder across processes), released on exit or after the TTL."""
        ...

    async def cache_get(self, key: str) -> bytes | None:
        """A value another process (or this one) shared under `key`, if it has not expired."""
        ...

    async def cache_set(self, key: str, value: bytes, ttl_seconds: float) -> None: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class MemoryCoordinator:
    """In-process coordination for a single replica; bounded so it never grows without limit."""

    backend = "memory"

    def __init__(self, max_keys: int = 100_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._max_keys = max_keys
        self._locks: dict[str, asyncio.Lock] = {}
        self._cache: dict[str, tuple[float, bytes]] = {}

    async def cache_get(self, key: str) -> bytes | None:
        entry = self._cache.get(key)
        if entry is None or entry[0] <= time.monotonic():
            self._cache.pop(key, None)
            return None
        return entry[1]

    async def cache_set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        now = time.monotonic()
        if len(self._cache) > 1000:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        self._cache[key] = (now + ttl_seconds, value)

    async def first_delivery(self, key: str, ttl_seconds: int) -> bool:
        now = time.monotonic()
        expires = self._seen.get(key)
        if expires is not None and expires > now:
            return False
        self._seen[key] = now + ttl_seconds
        self._seen.move_to_end(key)
        while len(self._seen) > self._max_keys:
            self._seen.popitem(last=False)
        return True

    @asynccontextmanager
    async def lock(self, name: str, *, ttl_seconds: float, wait_seconds: float) -> AsyncIterator[None]:
        lock = self._locks.setdefault(name, asyncio.Lock())
        try:
            await asyncio.wait_for(lock.acquire(), timeout=wait_seconds)
        except TimeoutError:
            raise LockUnavailable(name) from None
        try:
            yield
        finally:
            lock.release()

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._seen.clear()


RETRY_AFTER_S = 2.0
FALLBACK_KEYS = 20_000


class RedisCoordinator:
    """Redis-backed coordination shared by every replica pointed at the same Redis."""

    backend = "redis"

    def __init__(
        self, url: str, *, prefix: str = "opsbot:", on_backend: Callable[[bool], None] | None = None
    ) -> None:
        # No client-side retries with backoff: a request must not wait seconds on a dead Redis.
        self._redis = aioredis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0)
        )
        self._prefix = prefix
        # Enough to recognise Slack's retries (they come within minutes) through an outage, small
        # enough not to grow the process by more than a few MB.
        self._fallback = MemoryCoordinator(max_keys=FALLBACK_KEYS)
        self._on_backend = on_backend
        self.degraded = False
        self._next_try = 0.0

    async def first_delivery(self, key: str, ttl_seconds: int) -> bool:
        # Remembered here too, so a retry of something seen before Redis went away, or while it
        # was away, is still recognised by this process.
        if not await self._fallback.first_delivery(key, ttl_seconds):
            return False
        if self._resting():
            return True
        try:
            created = await self._redis.set(self._prefix + "seen:" + key, b"1", nx=True, ex=ttl_seconds)
        except (RedisError, OSError) as exc:
            self._degrade(exc)
            return True
        self._recover()
        return bool(created)

    async def cache_get(self, key: str) -> bytes | None:
        if self._resting():
            return await self._fallback.cache_get(key)
        try:
            value = await self._redis.get(self._prefix + "cache:" + key)
        except (RedisError, OSError) as exc:
            self._degrade(exc)
            return await self._fallback.cache_get(key)
        return value.encode() if isinstance(value, str) else value

    async def cache_set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        if self._resting():
            await self._fallback.cache_set(key, value, ttl_seconds)
            return
        try:
            await self._redis.set(self._prefix + "cache:" + key, value, px=max(1, int(ttl_seconds * 1000)))
        except (RedisError, OSError) as exc:
            self._degrade(exc)
            await self._fallback.cache_set(key, value, ttl_seconds)

    @asynccontextmanager
    async def lock(self, name: str, *, ttl_seconds: float, wait_seconds: float) -> AsyncIterator[None]:
        if self._resting():
            async with self._fallback.lock(name, ttl_seconds=ttl_seconds, wait_seconds=wait_seconds):
                yield
            return
        redis_lock = self._redis.lock(
            self._prefix + "lock:" + name, timeout=ttl_seconds, blocking_timeout=wait_seconds
        )
        try:
            acquired = await redis_lock.acquire()
        except (RedisError, OSError) as exc:
            self._degrade(exc)
            async with self._fallback.lock(name, ttl_seconds=ttl_seconds, wait_seconds=wait_seconds):
                yield
            return
        if not acquired:
            raise LockUnavailable(name)
        try:
            yield
        finally:
            try:
                await redis_lock.release()
            except (LockError, RedisError, OSError) as exc:
                log.warning("lock_release_failed", lock=name, error=str(exc))

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()

    def _resting(self) -> bool:
        """While degraded, Redis is tried again only every RETRY_AFTER_S: one slow request, not all."""
        return self.degraded and time.monotonic() < self._next_try

    def _degrade(self, exc: BaseException) -> None:
        self._next_try = time.monotonic() + RETRY_AFTER_S
        if not self.degraded:
            log.error("redis_unavailable_using_in_process_coordination", error=str(exc))
            self._switched(redis=False)
        self.degraded = True

    def _recover(self) -> None:
        if self.degraded:
            log.warning("redis_available_again")
            self._switched(redis=True)
        self.degraded = False

    def _switched(self, *, redis: bool) -> None:
        if self._on_backend is not None:
            self._on_backend(redis)


def create_coordinator(
    redis_url: str | None, on_backend: Callable[[bool], None] | None = None
) -> MemoryCoordinator | RedisCoordinator:
    """`on_backend(True|False)` hears every switch between Redis and the in-process fallback."""
    return RedisCoordinator(redis_url, on_backend=on_backend) if redis_url else MemoryCoordinator()

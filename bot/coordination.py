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
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import redis.asyncio as aioredis
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


class RedisCoordinator:
    """Redis-backed coordination shared by every replica pointed at the same Redis."""

    backend = "redis"

    def __init__(self, url: str, *, prefix: str = "opsbot:") -> None:
        self._redis = aioredis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._prefix = prefix
        self._fallback = MemoryCoordinator()
        self.degraded = False

    async def first_delivery(self, key: str, ttl_seconds: int) -> bool:
        try:
            created = await self._redis.set(self._prefix + "seen:" + key, b"1", nx=True, ex=ttl_seconds)
        except (RedisError, OSError) as exc:
            self._degrade(exc)
            return await self._fallback.first_delivery(key, ttl_seconds)
        self._recover()
        return bool(created)

    async def cache_get(self, key: str) -> bytes | None:
        try:
            value = await self._redis.get(self._prefix + "cache:" + key)
        except (RedisError, OSError) as exc:
            self._degrade(exc)
            return await self._fallback.cache_get(key)
        return value.encode() if isinstance(value, str) else value

    async def cache_set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        try:
            await self._redis.set(self._prefix + "cache:" + key, value, px=max(1, int(ttl_seconds * 1000)))
        except (RedisError, OSError) as exc:
            self._degrade(exc)
            await self._fallback.cache_set(key, value, ttl_seconds)

    @asynccontextmanager
    async def lock(self, name: str, *, ttl_seconds: float, wait_seconds: float) -> AsyncIterator[None]:
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

    def _degrade(self, exc: BaseException) -> None:
        if not self.degraded:
            log.error("redis_unavailable_using_in_process_coordination", error=str(exc))
        self.degraded = True

    def _recover(self) -> None:
        if self.degraded:
            log.warning("redis_available_again")
        self.degraded = False


def create_coordinator(redis_url: str | None) -> MemoryCoordinator | RedisCoordinator:
    return RedisCoordinator(redis_url) if redis_url else MemoryCoordinator()

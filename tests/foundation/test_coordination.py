"""Delivery dedupe and locks, in-process and on a real Redis, including Redis going away."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from bot.coordination import LockUnavailable, MemoryCoordinator, RedisCoordinator
from tests.conftest import free_port


@pytest.fixture(params=["memory", "redis"])
async def coordinators(request: pytest.FixtureRequest, redis_url: str):  # type: ignore[no-untyped-def]
    """Two coordinators that should agree: one shared object in-process, or two Redis clients."""
    if request.param == "memory":
        shared = MemoryCoordinator()
        yield shared, shared
        return
    prefix = f"opsbot-test-{uuid.uuid4().hex}:"
    a, b = RedisCoordinator(redis_url, prefix=prefix), RedisCoordinator(redis_url, prefix=prefix)
    yield a, b
    await a.close()
    await b.close()


async def test_a_delivery_is_first_exactly_once(coordinators) -> None:  # type: ignore[no-untyped-def]
    a, b = coordinators
    results = await asyncio.gather(*(c.first_delivery("event:Ev1", 60) for c in (a, b, a, b)))
    assert sorted(results) == [False, False, False, True]
    assert await a.first_delivery("event:Ev2", 60) is True


async def test_the_lock_has_one_holder_at_a_time(coordinators) -> None:  # type: ignore[no-untyped-def]
    a, b = coordinators
    inside = 0
    peak = 0

    async def hold(c) -> None:  # type: ignore[no-untyped-def]
        nonlocal inside, peak
        async with c.lock("target:app_db", ttl_seconds=5, wait_seconds=5):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.02)
            inside -= 1

    await asyncio.gather(*(hold(c) for c in (a, b, a, b, a)))
    assert peak == 1


async def test_waiting_too_long_for_a_lock_raises(coordinators) -> None:  # type: ignore[no-untyped-def]
    a, b = coordinators
    async with a.lock("target:cache", ttl_seconds=5, wait_seconds=1):
        with pytest.raises(LockUnavailable):
            async with b.lock("target:cache", ttl_seconds=5, wait_seconds=0.2):
                pass


async def test_memory_dedupe_forgets_after_the_ttl() -> None:
    coordinator = MemoryCoordinator()
    assert await coordinator.first_delivery("k", 0)
    assert await coordinator.first_delivery("k", 0)


async def test_unreachable_redis_degrades_to_in_process_answers() -> None:
    coordinator = RedisCoordinator(f"redis://127.0.0.1:{free_port()}/0")
    try:
        assert await coordinator.ping() is False
        assert await coordinator.first_delivery("event:Ev9", 60) is True
        assert await coordinator.first_delivery("event:Ev9", 60) is False
        assert coordinator.degraded
        async with coordinator.lock("x", ttl_seconds=1, wait_seconds=1):
            pass
    finally:
        await coordinator.close()

"""Token buckets for Slack budgets, in this process or shared through Redis by every replica.

Each bucket is kept as GCRA's "theoretical arrival time" (one number per bucket). `take` spends a
token from every bucket of one call at once, or from none, and otherwise says how long until it
could; `hold_off` empties a bucket until Slack's `Retry-After` has passed. In Redis both are one
script each (one round trip, atomic across replicas, Redis's clock for every replica); the `limits`
library was the alternative, but it takes one bucket per call and has no way to say "both the
channel's and the workspace's budget, or neither".
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.slack.budgets import Budget


@dataclass(frozen=True)
class Taken:
    """`ok`, or the seconds to wait and the budget that said no."""

    ok: bool
    wait: float = 0.0
    blocker: str | None = None


class Buckets(Protocol):
    async def take(self, budgets: Sequence[Budget], *, for_person: bool) -> Taken: ...

    async def hold_off(self, budget: Budget, seconds: float) -> None: ...

    async def close(self) -> None: ...


def _usable(budget: Budget, for_person: bool) -> int:
    return budget.burst if for_person else max(1, budget.burst - budget.reserve)


class MemoryBuckets:
    """One process's buckets: the budget of a bot without Redis (or while Redis is away)."""

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}

    async def take(self, budgets: Sequence[Budget], *, for_person: bool) -> Taken:
        now = time.monotonic()
        wait, blocker, after = 0.0, None, []
        for budget in budgets:
            tat = max(self._tat.get(budget.key, now), now) + budget.interval
            allowed_at = tat - _usable(budget, for_person) * budget.interval
            if allowed_at - now > wait:
                wait, blocker = allowed_at - now, budget.key
            after.append(tat)
        if blocker is not None:
            return Taken(ok=False, wait=wait, blocker=blocker)
        for budget, tat in zip(budgets, after, strict=True):
            self._tat[budget.key] = tat
        return Taken(ok=True)

    async def hold_off(self, budget: Budget, seconds: float) -> None:
        now = time.monotonic()
        held = now + seconds + (budget.burst - 1) * budget.interval
        self._tat[budget.key] = max(self._tat.get(budget.key, now), held)

    async def close(self) -> None:
        self._tat.clear()


# KEYS: one per budget. ARGV: interval_ms, burst (usable) for each, in order.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait, blocker, after = 0, 0, {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local usable = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local allowed_at = tat + interval - usable * interval
  if allowed_at - now > wait then wait = allowed_at - now; blocker = i end
  after[i] = tat + interval
end
if blocker > 0 then return {0, wait, blocker} end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], after[i], 'PX', math.ceil(after[i] - now) + 1000)
end
return {1, 0, 0}
"""

# KEYS[1]: the bucket. ARGV: hold_ms (Retry-After plus a full burst's worth): empty until then.
_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = now + tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if held > tat then redis.call('SET', KEYS[1], held, 'PX', tonumber(ARGV[1]) + 1000) end
return 1
"""


class RedisBuckets:
    """Buckets every replica shares, so three replicas together keep one workspace's budget."""

    def __init__(self, url: str, namespace: str) -> None:
        # No retries with backoff: a Web API call must not wait seconds on a dead Redis.
        self._redis = aioredis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0)
        )
        self._prefix = f"opsbot:slack-budget:{namespace}:"
        self._take = self._redis.register_script(_TAKE)
        self._hold = self._redis.register_script(_HOLD)

    async def take(self, budgets: Sequence[Budget], *, for_person: bool) -> Taken:
        keys = [self._prefix + b.key for b in budgets]
        args: list[float | int] = []
        for budget in budgets:
            args += [budget.interval * 1000, _usable(budget, for_person)]
        ok, wait, blocker = await self._take(keys=keys, args=args)
        if ok:
            return Taken(ok=True)
        return Taken(ok=False, wait=float(wait) / 1000, blocker=budgets[int(blocker) - 1].key)

    async def hold_off(self, budget: Budget, seconds: float) -> None:
        hold_ms = int((seconds + (budget.burst - 1) * budget.interval) * 1000)
        await self._hold(keys=[self._prefix + budget.key], args=[hold_ms])

    async def close(self) -> None:
        await self._redis.aclose()

"""Slack's Web API rate limits: the budget table and the token buckets that apply it.

Sources (see /work/shared/reference/slack-platform.md §4): the tier of each method is the `rate_limits`
field of slack-api-ref's docs.slack.dev method pages, checked against java-slack-sdk's MethodsRateLimits.
docs.slack.dev/apis/web-api/rate-limits gives the tiers per workspace and per app: Tier 1 1+/min ("a small
amount of burst behavior is tolerated"), Tier 2 20+/min, Tier 3 50+/min, Tier 4 100+/min. chat.postMessage
is "Special": about one message per second per channel with short bursts, and several hundred per minute
per workspace. auth.test is Special too; java-slack-sdk budgets it at 600/min.

Each budget is a token bucket: it holds up to `capacity` calls (the burst) and refills at the per-minute
rate, so a client that keeps to the pace is never refused and a burst is refused only once it is spent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

TIER_PER_MINUTE: Mapping[int, int] = MappingProxyType({1: 1, 2: 20, 3: 50, 4: 100})
# Methods the table does not name are budgeted as Tier 3, the most common tier for reads and writes.
DEFAULT_TIER = 3
# Slack-initiated Socket Mode refreshes make a client call apps.connections.open again at once; Tier 1's
# tolerated burst lets that reconnect through while a loop of opens is still refused.
TIER_1_BURST = 2

_METHOD_TIER: dict[str, int] = {
    "apps.connections.open": 1,
    "bookmarks.add": 2,
    "bookmarks.list": 2,
    "conversations.archive": 2,
    "conversations.create": 2,
    "conversations.list": 2,
    "conversations.setTopic": 2,
    "pins.add": 2,
    "pins.list": 2,
    "pins.remove": 2,
    "usergroups.list": 2,
    "usergroups.users.list": 2,
    "users.list": 2,
    "chat.delete": 3,
    "chat.update": 3,
    "conversations.history": 3,
    "conversations.info": 3,
    "conversations.invite": 3,
    "conversations.join": 3,
    "conversations.open": 3,
    "conversations.replies": 3,
    "reactions.add": 3,
    "reactions.get": 3,
    "reactions.remove": 3,
    "users.lookupByEmail": 3,
    "chat.getPermalink": 4,
    "chat.postEphemeral": 4,
    "conversations.members": 4,
    "files.completeUploadExternal": 4,
    "files.getUploadURLExternal": 4,
    "files.info": 4,
    "users.info": 4,
    "users.profile.get": 4,
    "views.open": 4,
    "views.publish": 4,
    "views.push": 4,
    "views.update": 4,
}
METHOD_TIER: Mapping[str, int] = MappingProxyType(_METHOD_TIER)
SPECIAL_PER_MINUTE: Mapping[str, int] = MappingProxyType({"chat.postMessage": 300, "auth.test": 600})
# Methods whose budget also applies per channel: chat.postMessage's one message per second per channel.
PACED_PER_CHANNEL: frozenset[str] = frozenset({"chat.postMessage"})


@dataclass(frozen=True)
class Budget:
    """A token bucket's shape: `capacity` calls at once, refilled at `per_second`."""

    capacity: float
    per_second: float

    @classmethod
    def per_minute(cls, calls: int, *, burst: int | None = None) -> Budget:
        return cls(capacity=float(burst if burst is not None else calls), per_second=calls / 60.0)


CHANNEL_PACE = Budget(capacity=3.0, per_second=1.0)


def method_budget(method: str) -> Budget:
    """The per-workspace budget of one method."""
    special = SPECIAL_PER_MINUTE.get(method)
    if special is not None:
        return Budget.per_minute(special)
    tier = METHOD_TIER.get(method, DEFAULT_TIER)
    return Budget.per_minute(TIER_PER_MINUTE[tier], burst=TIER_1_BURST if tier == 1 else None)


def per_minute_table() -> Mapping[str, int]:
    """Read-only view for reports: method → calls per minute per workspace (unnamed methods: Tier 3)."""
    table = {m: TIER_PER_MINUTE[t] for m, t in METHOD_TIER.items()} | dict(SPECIAL_PER_MINUTE)
    return MappingProxyType(dict(sorted(table.items())))


class TokenBucket:
    """Tokens refill continuously up to capacity; a call takes one."""

    def __init__(self, budget: Budget, now: float) -> None:
        self._budget = budget
        self._tokens = budget.capacity
        self._at = now

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._at)
        self._tokens = min(self._budget.capacity, self._tokens + elapsed * self._budget.per_second)
        self._at = now

    def wait(self, now: float) -> float:
        """Seconds until a call would be allowed; 0 when one is allowed now."""
        self._refill(now)
        missing = 1.0 - self._tokens
        return 0.0 if missing <= 0 else missing / self._budget.per_second

    def take(self, now: float) -> None:
        self._refill(now)
        self._tokens -= 1.0


def retry_after(wait: float) -> int:
    """Slack's Retry-After: whole seconds, never 0 for a refused call."""
    return max(1, math.ceil(wait))

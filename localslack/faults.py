"""Opt-in misbehaviour of the Web API: per-method rate-limit budgets and injected failures."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

# Calls per minute by Slack tier; "special" methods get their documented practical budget.
TIER_BUDGET: dict[int, int] = {1: 1, 2: 20, 3: 50, 4: 100}
METHOD_TIER: dict[str, int] = {
    "conversations.create": 2,
    "conversations.archive": 2,
    "conversations.setTopic": 2,
    "pins.add": 2,
    "pins.remove": 2,
    "pins.list": 2,
    "usergroups.list": 2,
    "usergroups.users.list": 2,
    "bookmarks.add": 2,
    "bookmarks.list": 2,
    "users.list": 2,
    "apps.connections.open": 1,
    "chat.update": 3,
    "chat.delete": 3,
    "conversations.invite": 3,
    "conversations.join": 3,
    "conversations.info": 3,
    "conversations.history": 3,
    "conversations.replies": 3,
    "reactions.add": 3,
    "reactions.remove": 3,
    "conversations.open": 3,
    "chat.postEphemeral": 4,
    "users.info": 4,
    "views.open": 4,
    "views.update": 4,
    "views.push": 4,
    "views.publish": 4,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
    "conversations.list": 2,
    "reactions.get": 3,
    "files.info": 4,
    "chat.getPermalink": 4,
    "users.lookupByEmail": 3,
}
SPECIAL_BUDGET: dict[str, int] = {"chat.postMessage": 60, "auth.test": 600}


@dataclass
class _Budget:
    calls: int
    window: float
    started: float = 0.0
    used: int = 0


@dataclass
class InjectedFailure:
    remaining: int
    status: int
    error: str


@dataclass(frozen=True)
class Fault:
    """What the Web API should answer instead of running the method."""

    status: int
    body: dict[str, object]
    retry_after: int | None = None


class Faults:
    """Everything is off until a test switches it on."""

    def __init__(self) -> None:
        self._tiers_enabled = False
        self._budgets: dict[str, _Budget] = {}
        self._failures: dict[str, InjectedFailure] = {}
        self._slow: dict[str, list[float]] = {}

    def enable_rate_limits(self) -> None:
        """Applies Slack's per-minute tier budgets to every method."""
        self._tiers_enabled = True

    def rate_limit(self, method: str, calls: int, per_seconds: float = 60.0) -> None:
        """Gives one method its own budget, e.g. 1 call per 1 s to exercise retry handlers quickly."""
        self._budgets[method] = _Budget(calls=calls, window=per_seconds)

    def fail_next(
        self, method: str, times: int = 1, *, status: int = 500, error: str = "fatal_error"
    ) -> None:
        """The next `times` calls answer `status` (200 means an `ok: false` body with `error`)."""
        self._failures[method] = InjectedFailure(remaining=times, status=status, error=error)

    def answer_late(self, method: str, seconds: float, times: int = 1) -> None:
        """The next `times` calls are carried out, then answered `seconds` late: a client that
        timed out cannot tell whether Slack did the work."""
        self._slow[method] = [seconds] * times

    def delay_after(self, method: str) -> float:
        pending = self._slow.get(method)
        return pending.pop(0) if pending else 0.0

    def reset(self) -> None:
        self._tiers_enabled = False
        self._budgets.clear()
        self._failures.clear()
        self._slow.clear()

    def check(self, method: str) -> Fault | None:
        failure = self._failures.get(method)
        if failure is not None and failure.remaining > 0:
            failure.remaining -= 1
            return Fault(status=failure.status, body={"ok": False, "error": failure.error})
        return self._rate_check(method)

    def _rate_check(self, method: str) -> Fault | None:
        budget = self._budgets.get(method)
        if budget is None and self._tiers_enabled:
            per_minute = SPECIAL_BUDGET.get(method) or TIER_BUDGET[METHOD_TIER.get(method, 3)]
            budget = self._budgets[method] = _Budget(calls=per_minute, window=60.0)
        if budget is None:
            return None
        now = time.monotonic()
        if now - budget.started >= budget.window:
            budget.started, budget.used = now, 0
        if budget.used < budget.calls:
            budget.used += 1
            return None
        retry_after = max(1, math.ceil(budget.started + budget.window - now))
        return Fault(status=429, body={"ok": False, "error": "ratelimited"}, retry_after=retry_after)

"""Web API misbehaviour: Slack's rate limits (on by default), per-method overrides, injected failures."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from localslack.limits import CHANNEL_PACE, PACED_PER_CHANNEL, TokenBucket, method_budget, retry_after


@dataclass
class _Window:
    """A test's own budget for one method: `calls` per fixed window of `window` seconds."""

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


def _ratelimited(seconds: int) -> Fault:
    return Fault(status=429, body={"ok": False, "error": "ratelimited"}, retry_after=seconds)


class Faults:
    """Slack's budgets apply unless switched off; everything else is off until a test switches it on."""

    def __init__(self, *, rate_limits: bool = True) -> None:
        self._default_limits = rate_limits
        self._limits_on = rate_limits
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._windows: dict[str, _Window] = {}
        self._failures: dict[str, InjectedFailure] = {}
        self._slow: dict[str, list[float]] = {}
        self._refused: dict[str, int] = {}

    @property
    def rate_limits_on(self) -> bool:
        return self._limits_on

    @property
    def refused(self) -> Mapping[str, int]:
        """How many calls of each method were answered 429, limits and injected 429s alike."""
        return MappingProxyType(dict(self._refused))

    def enable_rate_limits(self) -> None:
        """Applies Slack's budgets (see localslack.limits) to every method."""
        self._limits_on = True

    def disable_rate_limits(self) -> None:
        """No budget is applied except the per-method overrides of `rate_limit`."""
        self._limits_on = False

    def rate_limit(self, method: str, calls: int, per_seconds: float = 60.0) -> None:
        """Gives one method its own budget instead of Slack's, e.g. 1 call per 1 s to exercise retry
        handlers quickly; it applies whether or not Slack's budgets are on."""
        self._windows[method] = _Window(calls=calls, window=per_seconds)

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
        """Back to how the emulator started: its default limits with full budgets, nothing injected."""
        self._limits_on = self._default_limits
        self._buckets.clear()
        self._windows.clear()
        self._failures.clear()
        self._slow.clear()
        self._refused.clear()

    def check(self, method: str, channel: str | None = None) -> Fault | None:
        """Decides a call before it runs; `channel` is the channel id a paced method posts to."""
        fault = self._injected(method) or self._rate_check(method, channel)
        if fault is not None and fault.status == 429:
            self._refused[method] = self._refused.get(method, 0) + 1
        return fault

    def _injected(self, method: str) -> Fault | None:
        failure = self._failures.get(method)
        if failure is None or failure.remaining <= 0:
            return None
        failure.remaining -= 1
        return Fault(status=failure.status, body={"ok": False, "error": failure.error})

    def _rate_check(self, method: str, channel: str | None) -> Fault | None:
        now = time.monotonic()
        window = self._windows.get(method)
        if window is not None:
            return self._window_check(window, now)
        if not self._limits_on:
            return None
        buckets = [self._bucket((method, ""), now)]
        if method in PACED_PER_CHANNEL and channel:
            buckets.append(self._bucket((method, channel), now))
        # Every budget must allow the call, and a refused call spends none of them.
        wait = max(b.wait(now) for b in buckets)
        if wait > 0:
            return _ratelimited(retry_after(wait))
        for b in buckets:
            b.take(now)
        return None

    def _bucket(self, key: tuple[str, str], now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            method, channel = key
            budget = CHANNEL_PACE if channel else method_budget(method)
            bucket = self._buckets[key] = TokenBucket(budget, now)
        return bucket

    @staticmethod
    def _window_check(window: _Window, now: float) -> Fault | None:
        if now - window.started >= window.window:
            window.started, window.used = now, 0
        if window.used < window.calls:
            window.used += 1
            return None
        return _ratelimited(retry_after(window.started + window.window - now))

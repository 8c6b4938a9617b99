"""The one way out to Slack: every Web API call waits here for its budget, a person's first.

A call spends a token from its method's workspace budget (and a post from its channel's); with
Redis the buckets are shared, so replicas together keep one workspace's budget. A call that finds
its budget spent waits in a queue ordered by priority (`bot.slack.priority`) and then arrival, and a
dispatcher grants waiting calls as tokens come back. Work nobody waits on cannot take a budget's
last tokens (`Budget.reserve`), so an answer to a person finds one even while a storm of card
refreshes has the queue full. A channel keeps its last post for people only while people are there
(someone spoke to the bot in it within `PEOPLE_LINGER_S`, as `person_in` hears): a storm's cards in
an alerts channel nobody is typing in take its whole burst.

Successive updates of one message (`chat.update` of the same channel and ts) merge while they wait:
the newest content replaces the queued one and every caller gets the answer to it, and a message
has one update in flight at a time, so an older state can never land after a newer one.

Slack's 429 is not an error here: its `Retry-After` empties the budget that said no for every
replica, and the call waits its turn again. Nothing is dropped; a call waits until its patience is
over (a modal's trigger lives 3 s, bulk work ten minutes, anything else two minutes) and then fails
as `ratelimited`, which the durable outbox (`bot.slack.outbox`) treats as "try again later".
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError

from bot.logs import get_logger
from bot.metrics import Metrics
from bot.slack.buckets import Buckets, MemoryBuckets, Taken
from bot.slack.budgets import Budget, budgets_for, channel_key
from bot.slack.priority import Priority, for_call

log = get_logger(__name__)

T = TypeVar("T")

# A modal must open within its trigger's 3 s; anything else may wait this long before failing.
TRIGGER_PATIENCE_S = 2.5
PATIENCE_S = 120.0
# Bulk work (alert card refreshes, which merge while they wait) keeps its place through a long storm.
BULK_PATIENCE_S = 600.0
TRIGGER_METHODS = frozenset({"views.open", "views.push"})
# Methods outside the bot's budgets: opening a Socket Mode connection uses the app token and its
# client backs off on its own.
UNSCHEDULED = frozenset({"apps.connections.open"})
REDIS_RETRY_S = 5.0
PEOPLE_LINGER_S = 600.0


class NotSent(Exception):
    """The call's budget did not come back within its patience; Slack was not called."""

    def __init__(self, method: str, waited: float) -> None:
        super().__init__(f"{method} not sent: rate limited for {waited:.1f} s")
        self.method = method


@dataclass(eq=False)
class _Waiter:
    priority: Priority
    seq: int
    method: str
    budgets: tuple[Budget, ...]
    merge_key: str | None
    call: Callable[[], Awaitable[Any]]
    granted: asyncio.Future[None] | None = None
    result: asyncio.Future[Any] | None = None
    queued_at: float = 0.0
    merged: int = field(default=0)

    def order(self) -> tuple[int, int]:
        return (int(self.priority), self.seq)


def retry_after(exc: SlackApiError) -> float | None:
    """Slack's Retry-After in seconds when the answer was a 429, else None."""
    response = exc.response
    if response is None or response.status_code != 429:
        return None
    for name, value in (response.headers or {}).items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            with suppress(TypeError, ValueError):
                return max(0.0, float(raw))
    return 1.0


class OutboundScheduler:
    def __init__(
        self,
        buckets: Buckets,
        metrics: Metrics,
        budgets: Callable[[str, str | None], tuple[Budget, ...]] = budgets_for,
    ) -> None:
        self._buckets = buckets
        self._budgets = budgets
        self._fallback = MemoryBuckets()
        self._shared = not isinstance(buckets, MemoryBuckets)
        self._metrics = metrics
        self._queue: list[_Waiter] = []
        self._queued: Counter[tuple[str, int]] = Counter()
        self._merging: dict[str, _Waiter] = {}
        self._inflight: set[str] = set()
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._due = math.inf  # when the dispatcher next walks the queue unless woken
        self._degraded = False
        self._people: dict[str, float] = {}  # channel budget key -> when a person last spoke there
        metrics.slack_budget_shared.set(1 if self._shared else 0)

    async def send(
        self,
        method: str,
        channel: str | None,
        call: Callable[[], Awaitable[T]],
        *,
        merge_key: str | None = None,
    ) -> T:
        """Make `call` (one Web API call of `method`) when its budget allows, retrying 429s."""
        if method in UNSCHEDULED:
            return await call()
        priority = for_call(method)
        if merge_key is not None:
            return await self._send_merged(method, channel, call, merge_key, priority)
        waiter = self._waiter(method, channel, call, None, priority)
        return await self._run(waiter)  # type: ignore[no-any-return]

    async def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None
        await self._buckets.close()

    def person_in(self, channel: str) -> None:
        """A person spoke to the bot in `channel` (by id): keep its last post for answers a while.

        Known to this replica only: a person's first answer through another replica may wait one
        post's interval behind that replica's bulk work (it still goes first in the queue).
        """
        self._people[channel_key(channel)] = time.monotonic()

    def waiting(self) -> dict[str, int]:
        """Calls waiting for their budget, by priority name (for /ready and the benchmarks)."""
        counts: Counter[str] = Counter(w.priority.name.lower() for w in self._queue)
        return dict(counts)

    # --- merging updates of one message ------------------------------------------------------

    async def _send_merged(
        self, method: str, channel: str | None, call: Callable[[], Awaitable[T]], key: str, priority: Priority
    ) -> T:
        queued = self._merging.get(key)
        # A queued update still waiting merges; one that has given up (NotSent) must not swallow
        # every later update of its message.
        if queued is not None and queued.result is not None and not queued.result.done():
            queued.call = call  # the latest state wins
            queued.merged += 1
            self._metrics.slack_outbound_merged.inc()
            if priority < queued.priority:
                self._reprioritise(queued, priority)
            return await asyncio.shield(queued.result)
        waiter = self._waiter(method, channel, call, key, priority)
        waiter.result = asyncio.get_running_loop().create_future()
        self._merging[key] = waiter
        # Run apart from the caller: callers that merged into it wait on its answer too.
        runner = asyncio.ensure_future(self._run(waiter))
        runner.add_done_callback(lambda done: _settle(waiter, done))
        return await asyncio.shield(waiter.result)

    def _reprioritise(self, waiter: _Waiter, priority: Priority) -> None:
        queued = waiter in self._queue
        if queued:
            self._unqueue(waiter)
        waiter.priority = priority
        if queued:
            self._enqueue(waiter)

    # --- one call, start to finish -----------------------------------------------------------

    def _waiter(
        self,
        method: str,
        channel: str | None,
        call: Callable[[], Awaitable[Any]],
        key: str | None,
        priority: Priority,
    ) -> _Waiter:
        return _Waiter(priority, next(self._seq), method, self._budgets(method, channel), key, call)

    async def _run(self, waiter: _Waiter) -> Any:
        loop = asyncio.get_running_loop()
        started = loop.time()
        patience = (
            TRIGGER_PATIENCE_S
            if waiter.method in TRIGGER_METHODS
            else BULK_PATIENCE_S
            if waiter.priority == Priority.BULK
            else PATIENCE_S
        )
        while True:
            await self._admit(waiter, started + patience)
            if waiter.merge_key is not None:
                if self._merging.get(waiter.merge_key) is waiter:
                    del self._merging[waiter.merge_key]
                self._inflight.add(waiter.merge_key)
            self._metrics.slack_outbound_wait.labels(waiter.priority.name.lower()).observe(
                loop.time() - started
            )
            try:
                return await waiter.call()
            except SlackApiError as exc:
                seconds = retry_after(exc)
                if seconds is None:
                    raise
                self._metrics.slack_ratelimited.labels(waiter.method).inc()
                log.warning("slack_ratelimited", method=waiter.method, retry_after=seconds)
                await self._hold_off(waiter, seconds)
            finally:
                if waiter.merge_key is not None:
                    self._inflight.discard(waiter.merge_key)
                    self._wake.set()
            if waiter.merge_key is not None:
                newer = self._merging.get(waiter.merge_key)
                if newer is not None and newer.result is not None:
                    # A newer update of the message queued while this one was refused: it replaces this one.
                    return await asyncio.shield(newer.result)
                self._merging[waiter.merge_key] = waiter

    async def _admit(self, waiter: _Waiter, deadline: float) -> None:
        """Return when `waiter` has its tokens; raise NotSent at `deadline`."""
        loop = asyncio.get_running_loop()
        refill: float | None = None
        if not self._behind_someone(waiter):
            taken = await self._take(waiter)
            if taken.ok:
                return
            refill = loop.time() + taken.wait
        waiter.granted = loop.create_future()
        waiter.queued_at = loop.time()
        self._enqueue(waiter)
        # The dispatcher is due when the budgets its queue waits for refill; it is woken only if this
        # call's budget refills sooner (a wake per queued call would walk the queue once per call).
        if refill is not None and refill < self._due:
            self._wake.set()
        self._ensure_dispatcher()
        try:
            await asyncio.wait_for(asyncio.shield(waiter.granted), max(0.0, deadline - loop.time()))
        except TimeoutError:
            waiter.granted.cancel()
            raise NotSent(waiter.method, loop.time() - waiter.queued_at) from None
        finally:
            if waiter in self._queue:
                self._unqueue(waiter)

    def _behind_someone(self, waiter: _Waiter) -> bool:
        """Must this call queue: its message has an update in flight, or someone at least as
        important already waits on one of its budgets."""
        if waiter.merge_key is not None and waiter.merge_key in self._inflight:
            return True
        return any(self._queued[(b.key, p)] for b in waiter.budgets for p in range(int(waiter.priority) + 1))

    async def _take(self, waiter: _Waiter) -> Taken:
        for_person = waiter.priority == Priority.PERSON
        budgets = waiter.budgets if for_person else tuple(self._kept_for_people(b) for b in waiter.budgets)
        if not self._shared or self._degraded:
            return await self._fallback.take(budgets, for_person=for_person)
        try:
            return await self._buckets.take(budgets, for_person=for_person)
        except (RedisError, OSError) as exc:
            # Each replica keeps its own budget while Redis is away: over by the replica count at worst.
            self._degrade(exc)
            return await self._fallback.take(budgets, for_person=for_person)

    def _kept_for_people(self, budget: Budget) -> Budget:
        """`budget` as work nobody waits on sees it: with its reserve only while people are near."""
        if not budget.reserved_near_people or budget.reserve == 0:
            return budget
        seen = self._people.get(budget.key)
        if seen is not None and time.monotonic() - seen < PEOPLE_LINGER_S:
            return budget
        return replace(budget, reserve=0)

    async def _hold_off(self, waiter: _Waiter, seconds: float) -> None:
        budget = waiter.budgets[0]  # a post's channel, or the method
        await self._fallback.hold_off(budget, seconds)
        if self._shared and not self._degraded:
            try:
                await self._buckets.hold_off(budget, seconds)
            except (RedisError, OSError) as exc:
                self._degrade(exc)

    def _degrade(self, exc: BaseException) -> None:
        if self._degraded:
            return
        log.error("slack_budget_redis_unreachable", error=str(exc))
        self._degraded = True
        self._metrics.slack_budget_shared.set(0)
        asyncio.get_running_loop().call_later(REDIS_RETRY_S, self._recover)

    def _recover(self) -> None:
        self._degraded = False
        self._metrics.slack_budget_shared.set(1)

    # --- the queue and its dispatcher --------------------------------------------------------

    def _enqueue(self, waiter: _Waiter) -> None:
        bisect.insort(self._queue, waiter, key=_Waiter.order)
        for budget in waiter.budgets:
            self._queued[(budget.key, int(waiter.priority))] += 1
        self._metrics.slack_outbound_queued.labels(waiter.priority.name.lower()).inc()

    def _unqueue(self, waiter: _Waiter) -> None:
        self._queue.remove(waiter)
        for budget in waiter.budgets:
            self._queued[(budget.key, int(waiter.priority))] -= 1
        self._metrics.slack_outbound_queued.labels(waiter.priority.name.lower()).dec()

    def _ensure_dispatcher(self) -> None:
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.ensure_future(self._dispatch())

    async def _dispatch(self) -> None:
        while True:
            self._wake.clear()
            pause = await self._grant_round()
            if pause is None:
                self._due = math.inf
                await self._wake.wait()
            else:
                self._due = asyncio.get_running_loop().time() + pause
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), pause)

    async def _grant_round(self) -> float | None:
        """Grant every waiting call whose budgets allow, in order; the pause until one may."""
        blocked: set[str] = set()
        pause: float | None = None
        for waiter in list(self._queue):
            if waiter.granted is None or waiter.granted.done():
                continue
            if waiter.merge_key is not None and waiter.merge_key in self._inflight:
                continue
            if any(b.key in blocked for b in waiter.budgets):
                continue
            taken = await self._take(waiter)
            if taken.ok:
                if not waiter.granted.done():  # it may have given up while Redis answered
                    self._unqueue(waiter)
                    waiter.granted.set_result(None)
                continue
            blocked.add(taken.blocker or waiter.budgets[0].key)
            pause = taken.wait if pause is None else min(pause, taken.wait)
        return pause


def _settle(waiter: _Waiter, done: asyncio.Future[Any]) -> None:
    """Hand the merged call's outcome to everyone waiting on it (the entry in `_merging` is
    replaced by the next update of the message, or ignored once its result is set)."""
    result = waiter.result
    if result is None or result.done():
        return
    if done.cancelled():
        result.cancel()
    elif (exc := done.exception()) is not None:
        result.set_exception(exc)
    else:
        result.set_result(done.result())

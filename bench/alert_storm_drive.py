"""What happens during the alert storm, and what is watched: Alertmanager's notifications on the
script's clock, a person's `/db connections` and approvals, and each group's card in localslack.

Times are `time.perf_counter()` in this process. The notifier behaves as Alertmanager does per group:
one notification of a group in flight at a time, a later one carries the group's state when it
leaves (states due meanwhile are superseded, counted as `coalesced`), and a 5xx or a timeout is
sent again, at most three times, unless a newer state superseded it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import aiohttp
import psycopg

from bench.alert_storm_plan import LANES, GroupState, Step, alertmanager_body, card_state, group_of_text
from bench.loadgen import Completions, HttpSender, Shot
from bench.slackside import Payloads, reply_key
from bot.render.approval import APPROVE, STATE_LINE
from localslack import LocalSlack, Message

ATTEMPTS = 3
NOTIFY_TIMEOUT_S = 120.0
REQUEST_WAIT_S = 20.0
POLL_S = 0.05
T = TypeVar("T")


@dataclass
class Sent:
    """A notification the bot accepted: when it left and the state it carried."""

    at: float
    step: int
    state: GroupState
    alerts: int


@dataclass
class Notifier:
    url: str
    token: str
    steps: list[Step]
    started_wall: datetime
    accepted: dict[int, list[Sent]] = field(default_factory=dict)
    first_sent: dict[int, float] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    coalesced: int = 0
    retried: int = 0
    last_due: float = 0.0
    _pending: dict[int, Step] = field(default_factory=dict)
    _busy: set[int] = field(default_factory=set)

    async def run(self, t0: float) -> None:
        """Every step at its time; returns once every notification is answered or given up."""
        workers: set[asyncio.Task[None]] = set()
        timeout = aiohttp.ClientTimeout(total=NOTIFY_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
            for step in self.steps:
                await asyncio.sleep(max(0.0, t0 + step.at_s - time.perf_counter()))
                if step.group in self._pending:
                    self.coalesced += 1
                self._pending[step.group] = step
                if step.group not in self._busy:
                    self._busy.add(step.group)
                    task = asyncio.create_task(self._drain(session, step.group))
                    workers.add(task)
                    task.add_done_callback(workers.discard)
            self.last_due = time.perf_counter()
            while workers:
                await asyncio.gather(*list(workers))

    async def _drain(self, session: aiohttp.ClientSession, group: int) -> None:
        try:
            while group in self._pending:
                step = self._pending.pop(group)
                for attempt in range(ATTEMPTS):
                    if await self._post(session, step) or group in self._pending:
                        break
                    self.retried += attempt < ATTEMPTS - 1
        finally:
            self._busy.discard(group)

    async def _post(self, session: aiohttp.ClientSession, step: Step) -> bool:
        body = alertmanager_body(step, self.steps, self.started_wall)
        headers = {"Authorization": f"Bearer {self.token}"}
        sent = time.perf_counter()
        self.first_sent.setdefault(step.group, sent)
        try:
            async with session.post(self.url, json=body, headers=headers) as resp:
                await resp.read()
                status = str(resp.status)
        except TimeoutError:
            status = "timeout"
        except aiohttp.ClientError as exc:
            status = type(exc).__name__
        self.statuses[status] += 1
        self.latencies.append(time.perf_counter() - sent)
        if status != "200":
            return False
        self.accepted.setdefault(step.group, []).append(Sent(sent, step.index, step.state, len(step.alerts)))
        return True


@dataclass
class Card:
    channel: str
    ts: str
    seen: float
    # (first seen, state) each time what the card shows changes
    history: list[tuple[float, GroupState | None]] = field(default_factory=list)


class CardWatch:
    """Polls localslack's stored messages: when each group's card appears and each state it shows."""

    def __init__(self, slack: LocalSlack) -> None:
        self._slack = slack
        self.cards: dict[int, Card] = {}
        self._scanned: dict[str, int] = {}

    def poll(self) -> None:
        now = time.perf_counter()
        for lane in LANES:
            messages = self._slack.messages(lane.channel_id)
            for message in messages[self._scanned.get(lane.channel_id, 0) :]:
                group = group_of_text(message.text or "")
                if group is not None and group not in self.cards:
                    self.cards[group] = Card(lane.channel_id, message.ts, now)
            self._scanned[lane.channel_id] = len(messages)
        for card in self.cards.values():
            state = card_state(self._slack.message(card.channel, card.ts).blocks)
            if not card.history or card.history[-1][1] != state:
                card.history.append((now, state))

    def shows(self, group: int) -> GroupState | None:
        card = self.cards.get(group)
        return card.history[-1][1] if card and card.history else None

    def messages_of(self, group: int) -> int:
        """The card and every reply in its thread."""
        card = self.cards.get(group)
        return 0 if card is None else 1 + len(self._slack.thread(card.channel, card.ts))

    async def watch(self) -> None:
        while True:
            self.poll()
            await asyncio.sleep(POLL_S)


@dataclass
class Approval:
    request_s: float | None  # alice's modal submitted → her approval card in the channel
    click_s: float | None  # bob's click sent → the card redrawn "approved by" him


class Person:
    """Dave types `/db connections` every `db_every_s`; alice requests an action and bob approves it
    every `approve_every_s`. Clicks and commands are signed like Slack's and sent to the bot; `leak`
    leaves idle connections behind for each request to terminate."""

    def __init__(
        self, slack: LocalSlack, sender: HttpSender, channel: str, leak: Callable[[int], Awaitable[int]]
    ) -> None:
        self._slack = slack
        self._leak = leak
        self._sender = sender
        self._channel = channel
        self._payloads = Payloads(slack)
        self.db: list[Shot] = []
        self.approvals: list[Approval] = []

    async def type_db(self, completions: Completions, duration_s: float, every_s: float) -> None:
        started = time.perf_counter()
        for n in range(int(duration_s / every_s)):
            await asyncio.sleep(max(0.0, started + n * every_s - time.perf_counter()))
            payload = self._payloads.slash("dave", self._channel, "/db", "connections")
            shot = Shot("db", "slash_commands", payload, key=reply_key("U0DAVE"))
            self.db.append(shot)
            completions.expect(shot)
            await self._sender.send(shot)
            if shot.error is not None:
                completions.forget(shot)

    async def approve(self, duration_s: float, every_s: float) -> None:
        started = time.perf_counter()
        for n in range(int(duration_s / every_s)):
            await asyncio.sleep(max(0.0, started + n * every_s - time.perf_counter()))
            card, request_s = await self._request(n)
            click_s = await self._click(card) if card is not None else None
            self.approvals.append(Approval(request_s, click_s))
            if card is not None and click_s is not None:
                # Its terminate_idle must have run before the next request leaks a connection for the
                # next one to find, or that request is (rightly) refused as having nothing to act on.
                await _until(lambda card=card: self._finished(card), REQUEST_WAIT_S)

    def _finished(self, card: Message) -> bool:
        shown = str(self._slack.message(card.channel, card.ts).blocks)
        return any(STATE_LINE[state] in shown for state in ("succeeded", "failed"))

    async def _request(self, n: int) -> tuple[Message | None, float | None]:
        reason = f"alert storm request {n}"
        # A request that would terminate nothing is refused before it becomes a card.
        for _ in range(3):
            try:
                await self._leak(1)
                break
            except psycopg.OperationalError:
                continue  # the previous approval's terminate_idle killed it while it was new
        command = "/runbook run db.connections:terminate_idle idle_minutes=0"
        await self._slack.slash("alice", self._channel, command)
        view = await _until(lambda: self._slack.current_view("alice"), REQUEST_WAIT_S)
        if view is None:
            return None, None
        submitted = time.perf_counter()
        await self._slack.submit_view("alice", view, {"reason": reason})

        def card() -> Message | None:
            found = [m for m in self._slack.messages(self._channel) if reason in str(m.blocks)]
            return found[-1] if found else None

        message = await _until(card, REQUEST_WAIT_S)
        return message, (time.perf_counter() - submitted) if message else None

    async def _click(self, card: Message) -> float | None:
        shot = Shot("approve", "interactive", self._payloads.click("bob", card, APPROVE))
        await self._sender.send(shot)
        if shot.error is not None:
            return None

        def redrawn() -> bool:
            return "approved by <@U0BOB>" in str(self._slack.message(card.channel, card.ts).blocks)

        done = await _until(redrawn, REQUEST_WAIT_S, interval=0.01)
        return time.perf_counter() - shot.sent if done else None


async def _until(check: Callable[[], T], timeout: float, interval: float = POLL_S) -> T | None:  # noqa: ASYNC109
    deadline = time.perf_counter() + timeout
    while True:
        found = check()
        if found or time.perf_counter() > deadline:
            return found or None
        await asyncio.sleep(interval)

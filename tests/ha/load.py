"""The mixed on-call load driven through localslack at the replicas: commands, approvals clicked by two
approvers at once, incident declares, 📌 pins in incident channels and Alertmanager notifications.

Owns the `Ledger` (what the load did and what it was answered), which the checks in
`tests/ha/figures.py` hold the stored state against. A user flow cut short by a kill (the view never
opened, the card never settled) is recorded, not raised: the people at the keyboard would retry, and
the figures say how often it happened.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp

from bot.alerts.samples import alertmanager_notification
from localslack import LocalSlack, Message
from localslack.delivery import Delivery
from localslack.recorder import DeliveryAttempt
from tests.approvals.helpers import button, request_action, text_of

ALERT_GROUPS = ("db-leak", "5xx", "disk", "cache")
# A settled approval card shows one of these; anything else after the wait is a stuck card.
SETTLED = ("✅ Done", "Interrupted", "Not run", "Failed")


@dataclass
class Approval:
    card: Message
    clicks: list[Delivery]
    outcome: str


@dataclass
class AlertPost:
    group: str
    status: int | None
    attempts: int


@dataclass
class Ledger:
    """Everything the load sent, with the answers it got."""

    replays: list[Delivery] = field(default_factory=list)
    events: list[Delivery] = field(default_factory=list)
    declared: list[Delivery] = field(default_factory=list)
    pinned: list[tuple[str, str]] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    # `/test counter` diagnoses acknowledged in #general: each must be posted there.
    diagnoses: int = 0
    interrupted_flows: list[str] = field(default_factory=list)
    alerts: list[AlertPost] = field(default_factory=list)

    def answered(self, slack: LocalSlack) -> tuple[int, int]:
        """(answered, sent) over every command, click, view submission (Slack never retries those: each
        attempt is one person's action) and every event (answered if an attempt or retry was);
        Slack's event retries run in the background, so read this after they have had their time."""
        interactions = _interactions(slack)
        answered = sum(_ok(a.status) for a in interactions)
        events = self.events + self.replays
        return answered + sum(d.ok for d in events), len(interactions) + len(events)

    def unanswered(self, slack: LocalSlack) -> list[str]:
        """Each request that got no answer: what it was, when, and what came back (for the failure)."""
        lines = [
            f"{datetime.fromtimestamp(a.at):%H:%M:%S.%f} {a.kind} status={a.status} {a.reason}"
            for a in _interactions(slack)
            if not _ok(a.status)
        ]
        return lines + [
            f"{d.kind} status={d.status} {[a.reason for a in d.attempts]}"
            for d in self.events + self.replays
            if not d.ok
        ]


def _interactions(slack: LocalSlack) -> list[DeliveryAttempt]:
    """Commands, clicks and view submissions as localslack delivered them (Slack retries none)."""
    return [a for a in slack.recorder.deliveries if a.kind != "events_api" and not a.retry_num]


def _ok(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


async def until(deadline: float, step: Callable[[int], Awaitable[None]], pause: float) -> None:
    for n in itertools.count():
        if time.monotonic() >= deadline:
            return
        await step(n)
        await asyncio.sleep(pause)


async def declarer(slack: LocalSlack, ledger: Ledger, deadline: float, pause: float) -> None:
    async def declare(n: int) -> None:
        delivery = await slack.slash("alice", "incident-response", f"/incident declare p0 ha drill {n}")
        ledger.declared.append(delivery)

    await until(deadline, declare, pause)


async def commander(slack: LocalSlack, ledger: Ledger, deadline: float) -> None:
    users = ["alice", "bob", "carol", "dave"]
    commands = ["/test counter", "/opsbot help", "/runbook list"]

    async def command(n: int) -> None:
        line = commands[n % len(commands)]
        delivery = await slack.slash(random.choice(users), "general", line)
        if line == "/test counter" and delivery.ok:
            ledger.diagnoses += 1

    await until(deadline, command, pause=0.4)


async def approver(slack: LocalSlack, ledger: Ledger, deadline: float) -> None:
    """alice requests; bob and carol both press Approve at the same moment (one approval is needed)."""

    async def one(_: int) -> None:
        try:
            card = await request_action(slack, "alice", "/test counter")
        except TimeoutError:
            ledger.interrupted_flows.append("request")
            return
        approve = button(card, "approval_approve")
        clicks = list(
            await asyncio.gather(slack.click("bob", card, approve), slack.click("carol", card, approve))
        )
        ledger.approvals.append(Approval(card, clicks, await _settled(slack, card)))

    await until(deadline, one, pause=0.3)


def card_outcome(slack: LocalSlack, card: Message) -> str | None:
    """How the approval card reads now, if it has settled."""
    blocks = text_of(slack.message("incident-response", card.ts).blocks)
    return next((state for state in SETTLED if state in blocks), None)


async def _settled(slack: LocalSlack, card: Message, timeout: float = 40) -> str:
    try:
        return await slack.wait_for(lambda: card_outcome(slack, card), timeout=timeout, interval=0.1)
    except TimeoutError:
        return "stuck"


async def pinner(slack: LocalSlack, ledger: Ledger, deadline: float) -> None:
    async def pin(n: int) -> None:
        alice = slack.user("alice").id
        # An incident channel the bot has created and already brought alice into.
        channels = [
            c
            for c in slack.state.channels.values()
            if c.name.startswith("inc-") and not c.is_archived and alice in c.members
        ]
        if not channels:
            return
        channel = random.choice(channels)
        posted = await slack.post("alice", channel.name, f"finding {n}: the pool is at its limit")
        assert posted.message is not None
        message, sent = posted.message, [posted]
        mark = n % 3  # 0: 📌 by bob, 1: pinned by alice, 2: both (still one timeline entry)
        if mark != 1:
            sent.append(await slack.react("bob", message, "pushpin"))
        if mark != 0:
            sent.append(await slack.pin("alice", message))
        ledger.events.extend(d for d in sent if d.transport != "none")
        if n % 4 == 0:
            # Slack delivers twice when it missed an answer the app did send: whatever went out last
            # (this pin, or another worker's command or click) arrives again, byte for byte.
            ledger.replays.append(await slack.replay_last())
        ledger.pinned.append((channel.id, message.ts))

    await until(deadline, pin, pause=1.5)


def notification(n: int) -> tuple[str, bytes]:
    """The n-th notification of a small rotation of alert groups: mostly firing (Alertmanager repeats
    a group every group_interval), every fifth one of a group resolved, then firing again."""
    name = ALERT_GROUPS[n % len(ALERT_GROUPS)]
    resolved = (n // len(ALERT_GROUPS)) % 5 == 4
    return name, json.dumps(alertmanager_notification(name, resolved=resolved)).encode()


async def alerter(url: str, token: str, ledger: Ledger, deadline: float) -> None:
    """POSTs Alertmanager notifications as Alertmanager does: on no answer or a 5xx it sends again
    (its backoff, shortened). Every third goes out twice at once, as two Alertmanager peers send it."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:

        async def deliver(group: str, body: bytes) -> None:
            status: int | None = None
            for attempt in range(1, 6):
                try:
                    timeout = aiohttp.ClientTimeout(total=10)
                    async with session.post(url, data=body, headers=headers, timeout=timeout) as resp:
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError):
                    status = None
                if status is not None and status < 500:
                    break
                await asyncio.sleep(0.2 * attempt)
            ledger.alerts.append(AlertPost(group, status, attempt))

        async def send(n: int) -> None:
            group, body = notification(n)
            await asyncio.gather(*(deliver(group, body) for _ in range(2 if n % 3 == 0 else 1)))

        await until(deadline, send, pause=0.5)

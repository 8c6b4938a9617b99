"""The outbound scheduler against localslack with Slack's limits on: paced, never lost, people first,
one budget for several replicas, merged updates.

Each test drives the bot's own Web API client (`create_web_client`) at a real localslack over HTTP.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from bot.slack import scheduler as scheduler_module
from bot.slack.buckets import MemoryBuckets, RedisBuckets
from bot.slack.budgets import Budget, budgets_for
from bot.slack.client import InstrumentedWebClient, create_web_client
from bot.slack.priority import Priority, serving
from bot.slack.scheduler import OutboundScheduler
from localslack import LocalSlack
from tests.conftest import opsbot_seed

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def slack() -> AsyncIterator[LocalSlack]:
    async with LocalSlack.running(opsbot_seed()) as emulator:
        yield emulator


def _client(slack: LocalSlack, scheduler: OutboundScheduler | None = None) -> InstrumentedWebClient:
    return create_web_client(slack.bot_token, slack.api_url, Metrics(), scheduler=scheduler)


async def _card(client: AsyncWebClient, channel: str, text: str) -> str:
    response = await client.chat_postMessage(channel=channel, text=text)
    return str(response["ts"])


async def test_a_burst_to_one_channel_is_paced_in_order_and_nothing_is_lost(slack: LocalSlack) -> None:
    client = _client(slack)
    channel = slack.channel("#incident-response").id
    try:
        started = time.monotonic()
        await asyncio.gather(*(_card(client, channel, f"burst {n}") for n in range(6)))
        took = time.monotonic() - started
    finally:
        await client.close()
    texts = [m.text for m in slack.messages(channel) if m.text.startswith("burst")]
    assert texts == [f"burst {n}" for n in range(6)]
    posts = slack.calls("chat.postMessage")
    assert all(call.status == 200 for call in posts), "the bot kept within the channel's pace"
    # The burst of three (nobody has spoken to the bot here), then one about every 1.1 s.
    assert took >= 3.0
    # Paced, not bunched: on average a post a second after the burst. A single gap may be shorter
    # when the post before it was late on a loaded machine (the bucket keeps time, not the arrival).
    gaps = [b.at - a.at for a, b in itertools.pairwise(posts[2:])]
    assert sum(gaps) / len(gaps) >= 0.95, gaps
    assert min(gaps) >= 0.5, gaps


async def test_slack_refusing_harder_than_the_budget_is_retried_after_retry_after(slack: LocalSlack) -> None:
    slack.faults.rate_limit("chat.postMessage", calls=1, per_seconds=1.5)
    metrics = Metrics()
    client = create_web_client(slack.bot_token, slack.api_url, metrics)
    channel = slack.channel("#incident-response").id
    try:
        await asyncio.gather(*(_card(client, channel, f"refused {n}") for n in range(3)))
    finally:
        await client.close()
    assert [m.text for m in slack.messages(channel) if m.text.startswith("refused")] == [
        "refused 0",
        "refused 1",
        "refused 2",
    ]
    refused = [c for c in slack.calls("chat.postMessage") if c.status == 429]
    assert refused, "Slack said no at least once"
    assert metrics.slack_ratelimited.labels("chat.postMessage")._value.get() == len(refused)


async def test_a_persons_post_overtakes_queued_bulk_posts_in_the_same_channel(slack: LocalSlack) -> None:
    client = _client(slack)
    channel = slack.channel("#incident-response").id
    client.scheduler.person_in(channel)  # as the middleware hears a command from the channel
    try:
        with serving(Priority.BULK):
            bulk = [asyncio.ensure_future(_card(client, channel, f"bulk {n}")) for n in range(5)]
        await asyncio.sleep(0.05)
        with serving(Priority.PERSON):
            started = time.monotonic()
            await _card(client, channel, "your answer")
            answered = time.monotonic() - started
        await asyncio.gather(*bulk)
    finally:
        await client.close()
    texts = [m.text for m in slack.messages(channel)]
    # At most the two bulk posts the channel's burst let through at once: its last token was the person's.
    assert texts.index("your answer") <= 2, texts
    assert answered < 1.0, "not behind the five bulk posts (over 4 s of the channel's pace)"
    assert sorted(t for t in texts if t.startswith("bulk")) == [f"bulk {n}" for n in range(5)]


async def test_a_channel_keeps_its_last_post_for_people_only_while_people_are_there(
    slack: LocalSlack,
) -> None:
    client = _client(slack)
    quiet, busy = slack.channel("#general").id, slack.channel("#incident-response").id
    client.scheduler.person_in(busy)
    try:
        with serving(Priority.BULK):
            await asyncio.gather(*(_card(client, ch, f"bulk {n}") for ch in (quiet, busy) for n in range(3)))
    finally:
        await client.close()

    def spread(channel: str) -> list[float]:
        posts = [c for c in slack.calls("chat.postMessage") if c.args.get("channel") == channel]
        return [round(b.at - posts[0].at, 2) for b in posts]

    # Nobody spoke to the bot in #general: its cards take the whole burst at once.
    assert max(spread(quiet)) < 0.5, spread(quiet)
    # Someone did in #incident-response: the third post waits for the next token, the burst's last is theirs.
    assert spread(busy)[2] >= 0.9, spread(busy)


def _quick(method: str, channel: str | None) -> tuple[Budget, ...]:
    """Slack's budgets made fast for chat.postMessage and tiny for chat.update: the queue, in seconds."""
    if method == "chat.update":
        return (Budget(key="method:chat.update", interval=0.3, burst=3, reserve=1),)
    if method == "chat.postMessage":
        return (Budget(key="method:chat.postMessage", interval=0.001, burst=100, reserve=0),)
    return budgets_for(method, channel)


async def test_a_persons_card_update_overtakes_a_queue_of_card_refreshes() -> None:
    # Unlimited Slack on purpose: the budget under test is the scheduler's own (made small).
    async with LocalSlack.running(opsbot_seed(), rate_limits=False) as slack:
        client = _client(slack, OutboundScheduler(MemoryBuckets(), Metrics(), budgets=_quick))
        channel = slack.channel("#incident-response").id
        try:
            cards = [await _card(client, channel, f"card {n}") for n in range(11)]
            with serving(Priority.BULK):
                refreshes = [
                    asyncio.ensure_future(client.chat_update(channel=channel, ts=ts, text="refreshed"))
                    for ts in cards[:10]
                ]
            await asyncio.sleep(0.1)
            with serving(Priority.PERSON):
                started = time.monotonic()
                await client.chat_update(channel=channel, ts=cards[10], text="you clicked")
                answered = time.monotonic() - started
            left_behind = sum(1 for r in refreshes if not r.done())
            await asyncio.gather(*refreshes)
        finally:
            await client.close()
        updates = [c.args.get("ts") for c in slack.calls("chat.update")]
    assert answered < 1.0, "not behind the ten refreshes (3 s of the budget)"
    assert left_behind >= 6, "the refreshes were still queued when the person's update went"
    assert updates.index(cards[10]) <= 3, updates


async def test_updates_of_one_message_merge_and_the_last_state_wins() -> None:
    async with LocalSlack.running(opsbot_seed(), rate_limits=False) as slack:
        metrics = Metrics()
        client = _client(slack, OutboundScheduler(MemoryBuckets(), metrics, budgets=_quick))
        channel = slack.channel("#incident-response").id
        try:
            card = await _card(client, channel, "card")
            others = [await _card(client, channel, f"other {n}") for n in range(3)]
            with serving(Priority.BULK):
                # Three updates of other cards take chat.update's burst; the card's states queue behind them.
                busy = [client.chat_update(channel=channel, ts=ts, text="busy") for ts in others]
                states = [client.chat_update(channel=channel, ts=card, text=f"state {n}") for n in range(8)]
                answers = await asyncio.gather(*busy, *states)
        finally:
            await client.close()
        sent = [c.args.get("text") for c in slack.calls("chat.update") if c.args.get("ts") == card]
        final = slack.message(channel, card).text
    assert final == "state 7"
    assert len(sent) <= 2, sent  # the first state may already be on its way; the rest merged into the last
    assert sent[-1] == "state 7"
    assert metrics.slack_outbound_merged._value.get() >= 6
    assert all(a["ok"] for a in answers)


async def test_an_update_drawn_when_due_shows_the_state_of_when_it_went_not_of_when_it_queued() -> None:
    def slow_updates(method: str, channel: str | None) -> tuple[Budget, ...]:
        if method == "chat.update":
            return (Budget(key="method:chat.update", interval=2.0, burst=2, reserve=0),)
        return _quick(method, channel)

    async with LocalSlack.running(opsbot_seed(), rate_limits=False) as slack:
        client = _client(slack, OutboundScheduler(MemoryBuckets(), Metrics(), budgets=slow_updates))
        channel = slack.channel("#incident-response").id
        state: dict[str, Any] = {"now": "state 0", "draws": 0}

        async def draw() -> dict[str, Any] | None:
            state["draws"] += 1
            return None if state["now"] == "unchanged" else {"text": state["now"]}

        try:
            card = await _card(client, channel, "card")
            others = [await _card(client, channel, f"other {n}") for n in range(2)]
            with serving(Priority.BULK):
                # Two updates of other cards take the burst; the card's update waits 2 s for the next.
                busy = [
                    asyncio.ensure_future(client.chat_update(channel=channel, ts=ts, text="busy"))
                    for ts in others
                ]
                await asyncio.sleep(0)
                waiting = asyncio.ensure_future(client.update_when_due(channel, card, draw))
                await asyncio.gather(*busy)
                await asyncio.sleep(0.05)
                assert not waiting.done() and state["draws"] == 0, "queued behind the budget, not drawn yet"
                state["now"] = "state 9"  # the group changed while its card waited
                await waiting
                state["now"] = "unchanged"
                skipped = await client.update_when_due(channel, card, draw)
        finally:
            await client.close()
        sent = [c.args.get("text") for c in slack.calls("chat.update") if c.args.get("ts") == card]
    assert sent == ["state 9"], "drawn once, when its turn came"
    assert skipped is None and state["draws"] == 2, "a draw that finds nothing new sends nothing"


async def test_an_update_that_gave_up_waiting_does_not_swallow_the_next(
    slack: LocalSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler_module, "PATIENCE_S", 0.5)
    budget = {"chat.update": Budget(key="method:chat.update", interval=60.0, burst=1, reserve=0)}

    def budgets(method: str, channel: str | None) -> tuple[Budget, ...]:
        return (budget[method],) if method in budget else budgets_for(method, channel)

    client = _client(slack, OutboundScheduler(MemoryBuckets(), Metrics(), budgets=budgets))
    channel = slack.channel("#incident-response").id
    try:
        card = await _card(client, channel, "state 0")
        await client.chat_update(channel=channel, ts=card, text="state 1")  # the budget's one call
        with pytest.raises(SlackApiError, match="ratelimited"):
            await client.chat_update(channel=channel, ts=card, text="state 2")  # gave up after 0.5 s
        budget["chat.update"] = Budget(key="method:chat.update:refilled", interval=0.01, burst=5, reserve=0)
        answer = await client.chat_update(channel=channel, ts=card, text="state 3")
    finally:
        await client.close()
    assert answer["ok"]
    assert slack.message(channel, card).text == "state 3"


def _replica(slack: LocalSlack, redis_url: str, workspace: str) -> InstrumentedWebClient:
    return _client(slack, OutboundScheduler(RedisBuckets(redis_url, workspace), Metrics(), budgets=_tight))


def _tight(method: str, channel: str | None) -> tuple[Budget, ...]:
    """users.info a little under 10 a second, bursts of 5: a budget a test exhausts in seconds."""
    if method == "users.info":
        return (Budget(key="method:users.info", interval=0.12, burst=5, reserve=1),)
    return budgets_for(method, channel)


async def _lookups(client: AsyncWebClient, user: str, n: int) -> None:
    await asyncio.gather(*(client.users_info(user=user) for _ in range(n)))


@pytest.mark.parametrize("shared", [True, False], ids=["shared-budget", "own-budgets"])
async def test_two_replicas_together_keep_one_workspace_budget(
    slack: LocalSlack, redis_url: str, shared: bool
) -> None:
    # Slack's side: 10 calls in any half-second window. One scheduler's bucket (a burst of at most 5,
    # then one per 0.12 s) makes at most 9 in one; two unshared ones make up to 18.
    slack.faults.rate_limit("users.info", calls=10, per_seconds=0.5)
    workspace = uuid.uuid4().hex
    first = _replica(slack, redis_url, workspace)
    second = (
        _replica(slack, redis_url, workspace)
        if shared
        else _client(slack, OutboundScheduler(MemoryBuckets(), Metrics(), budgets=_tight))
    )
    if not shared:
        first = _client(slack, OutboundScheduler(MemoryBuckets(), Metrics(), budgets=_tight))
    user = slack.user("alice").id
    try:
        await asyncio.gather(_lookups(first, user, 15), _lookups(second, user, 15))
    finally:
        await first.close()
        await second.close()
    calls = slack.calls("users.info")
    refused = [c for c in calls if c.status == 429]
    answered = [c for c in calls if c.status == 200]
    assert len(answered) == 30, "every lookup was answered in the end"
    if shared:
        assert refused == [], "together within the workspace's budget"
        span = answered[-1].at - answered[0].at
        assert span >= (30 - 4) * 0.12 * 0.9
    else:
        assert refused, "without a shared budget two replicas overrun Slack's"

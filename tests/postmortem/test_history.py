"""Reading a channel's whole history from localslack over HTTP, as the bot does, with rate limits."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from bot.postmortem.history import HistoryError, channel_names, read_channel, ts_key, user_names
from bot.slack.buckets import MemoryBuckets
from bot.slack.budgets import Budget
from bot.slack.client import create_web_client
from bot.slack.scheduler import OutboundScheduler
from localslack import File, LocalSlack
from localslack.model import User


def _roomy(method: str, channel: str | None) -> tuple[Budget, ...]:
    """Reading history within Slack's real tier-3 budget takes a page every 1.3 s; what these tests
    study is the read itself (order, threads, Slack's 429s), so the bot's own pacing is taken off."""
    return (Budget(key=f"method:{method}", interval=0.001, burst=1000, reserve=0),)


@pytest.fixture
async def client(slack: LocalSlack) -> AsyncIterator[AsyncWebClient]:
    metrics = Metrics()
    scheduler = OutboundScheduler(MemoryBuckets(), metrics, budgets=_roomy)
    web_client = create_web_client(slack.bot_token, slack.api_url, metrics, scheduler=scheduler)
    yield web_client
    await web_client.close()


def every_ts_oldest_first(slack: LocalSlack, channel: str) -> list[str]:
    return sorted(slack.channel(channel).messages, key=ts_key)


async def test_reads_every_message_once_in_order_through_429s(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    # Filled through the emulator's workspace state: 3,500 posts over HTTP would only slow the test.
    ch = slack.channel("#incident-response")
    authors = ["U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"]
    parents = [slack.state.add_message(ch, user=authors[i % 4], text=f"top {i}") for i in range(2500)]
    threads = parents[::125]
    assert len(threads) == 20
    for n, parent in enumerate(threads):
        for r in range(50):
            # One reply per thread is also sent to the channel: history and replies both return it.
            slack.state.add_message(
                ch, user=authors[r % 4], text=f"reply {n}.{r}", thread_ts=parent.ts, reply_broadcast=r == 7
            )
    # 13 history pages of 200: the 8th call inside one second gets 429 + Retry-After: 1; one thread's
    # read gets a bare 429. The client's handler waits and repeats the same cursor.
    slack.faults.rate_limit("conversations.history", calls=7, per_seconds=1)
    slack.faults.fail_next("conversations.replies", status=429, error="ratelimited")

    started = time.monotonic()
    messages = await read_channel(client, ch.id)
    elapsed = time.monotonic() - started

    assert [m.ts for m in messages] == every_ts_oldest_first(slack, ch.id)
    assert len(messages) == 2500 + 20 * 50
    assert len({m.ts for m in messages}) == len(messages)
    assert sum(m.is_reply for m in messages) == 1000
    rejected = slack.calls("conversations.history", ok=False)
    assert rejected and all(c.status == 429 for c in rejected)
    assert [c.status for c in slack.calls("conversations.replies", ok=False)] == [429]
    assert len(slack.calls("conversations.replies", ok=True)) == 20
    assert elapsed < 8
    by_ts = {m.ts: m for m in messages}
    first = by_ts[threads[0].ts]
    assert (first.reply_count, first.is_reply, first.thread_ts) == (50, False, threads[0].ts)
    reply = by_ts[threads[3].replies[7]]
    assert (reply.text, reply.is_reply, reply.thread_ts) == ("reply 3.7", True, threads[3].ts)


async def test_message_fields(slack: LocalSlack, client: AsyncWebClient) -> None:
    ch = slack.channel("#general")
    state = slack.state
    plain = state.add_message(ch, user="U0ALICE", text="db is down &lt;again&gt;")
    state.add_reaction(plain, "U0BOB", "eyes")
    state.add_reaction(plain, "U0CAROL", "pushpin")
    state.add_pin(ch, plain, "U0BOB")
    log = File(id="F0LOG", name="db.log", title="DB log", user="U0DAVE", size=3, channels=[ch.id])
    untitled = File(id="F0RAW", name="raw.txt", title="", user="U0DAVE", size=3, channels=[ch.id])
    upload = state.add_message(ch, user="U0DAVE", text="", files=[log, untitled])
    from_bot = state.add_message(ch, user=slack.bot_user_id, text="Incident declared")

    messages = await read_channel(client, ch.id)

    assert [m.ts for m in messages] == [plain.ts, upload.ts, from_bot.ts]
    first, second, third = messages
    assert first.text == "db is down &lt;again&gt;"
    assert (first.user, first.bot_id, first.reactions, first.pinned) == (
        "U0ALICE",
        None,
        ["eyes", "pushpin"],
        True,
    )
    sec, micro = (int(p) for p in plain.ts.split("."))
    assert first.at == datetime.fromtimestamp(sec, UTC).replace(microsecond=micro)
    assert first.at.tzinfo is UTC
    assert (second.files, second.pinned, second.reactions) == (["DB log", "raw.txt"], False, [])
    assert (third.user, third.bot_id) == (slack.bot_user_id, slack.bot_id)
    assert (first.thread_ts, first.is_reply, first.reply_count) == (None, False, 0)


async def test_empty_channel_reads_as_nothing(slack: LocalSlack, client: AsyncWebClient) -> None:
    assert await read_channel(client, "C0GENERAL") == []


async def test_channel_the_bot_cannot_read(slack: LocalSlack, client: AsyncWebClient) -> None:
    outside = slack.state.create_channel("war-room", "U0ALICE")
    secret = slack.state.create_channel("hr-private", "U0CAROL", is_private=True)
    slack.state.add_message(outside, user="U0ALICE", text="hello")

    with pytest.raises(HistoryError) as not_member:
        await read_channel(client, outside.id)
    assert (not_member.value.channel, not_member.value.error) == (outside.id, "not_in_channel")
    assert outside.id in str(not_member.value) and "not_in_channel" in str(not_member.value)

    with pytest.raises(HistoryError) as invisible:
        await read_channel(client, secret.id)
    assert (invisible.value.method, invisible.value.error) == ("conversations.history", "channel_not_found")


async def test_a_thread_that_fails_fails_the_read(slack: LocalSlack, client: AsyncWebClient) -> None:
    ch = slack.channel("#incident-response")
    for i in range(5):
        parent = slack.state.add_message(ch, user="U0ALICE", text=f"top {i}")
        slack.state.add_message(ch, user="U0BOB", text="reply", thread_ts=parent.ts)
    slack.faults.fail_next("conversations.replies", status=200, error="thread_not_found")

    with pytest.raises(HistoryError) as info:
        await read_channel(client, ch.id)
    assert (info.value.channel, info.value.method, info.value.error) == (
        ch.id,
        "conversations.replies",
        "thread_not_found",
    )


async def test_rate_limit_that_outlasts_the_retries(slack: LocalSlack) -> None:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    client.retry_handlers = [AsyncRateLimitErrorRetryHandler(max_retry_count=1)]
    slack.state.add_message(slack.channel("#general"), user="U0ALICE", text="hi")
    slack.faults.fail_next("conversations.history", times=2, status=429, error="ratelimited")

    with pytest.raises(HistoryError) as info:
        await read_channel(client, "C0GENERAL")
    assert (info.value.channel, info.value.error) == ("C0GENERAL", "ratelimited")
    assert len(slack.calls("conversations.history")) == 2


async def test_user_and_channel_names(slack: LocalSlack, client: AsyncWebClient) -> None:
    slack.state.users["U0ERIN"] = User(id="U0ERIN", team_id=slack.team_id, name="erin", real_name="Erin Eze")
    slack.state.users["U0FRED"] = User(id="U0FRED", team_id=slack.team_id, name="fred", real_name="")

    names = await user_names(client, ["U0ALICE", "U0ERIN", "U0FRED", "U0NOBODY", "U0ALICE", "U0ERIN"])

    assert names == {"U0ALICE": "alice", "U0ERIN": "Erin Eze", "U0FRED": "fred", "U0NOBODY": "U0NOBODY"}
    assert sorted(c.args["user"] for c in slack.calls("users.info")) == [
        "U0ALICE",
        "U0ERIN",
        "U0FRED",
        "U0NOBODY",
    ]
    channels = await channel_names(client, ["C0INCIDENT", "C0GENERAL", "C0GONE"])
    assert channels == {"C0INCIDENT": "incident-response", "C0GENERAL": "general", "C0GONE": "C0GONE"}

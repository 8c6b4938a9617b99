"""Slack's clock a few minutes off ours, and deliveries that repeat or arrive out of order."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from bot.server import BotServer
from localslack import LocalSlack
from tests.security.forge import event, mention_event, post, sign


def _replies(slack: LocalSlack) -> int:
    return len(slack.calls("chat.postMessage"))


@pytest.mark.parametrize("skew_seconds", [-240, 240])
async def test_a_few_minutes_of_clock_skew_is_accepted(
    slack: LocalSlack, http_bot: BotServer, skew_seconds: int
) -> None:
    body = event(mention_event(slack, "alice", "incident-response", f"Ev{uuid.uuid4().hex[:10]}"))
    headers = sign(slack.signing_secret, body.data, int(time.time()) + skew_seconds)
    status, _ = await post(http_bot.url + "/slack/events", body, headers)
    assert status == 200
    await slack.wait_for(lambda: _replies(slack) == 1, timeout=10)


@pytest.mark.parametrize("skew_seconds", [-360, 360])
async def test_more_than_five_minutes_of_skew_is_refused_and_runs_nothing(
    slack: LocalSlack, http_bot: BotServer, skew_seconds: int
) -> None:
    body = event(mention_event(slack, "alice", "incident-response", f"Ev{uuid.uuid4().hex[:10]}"))
    headers = sign(slack.signing_secret, body.data, int(time.time()) + skew_seconds)
    status, _ = await post(http_bot.url + "/slack/events", body, headers)
    assert status == 401
    await asyncio.sleep(0.5)
    assert _replies(slack) == 0


async def test_retries_arriving_before_the_original_and_late_duplicates_act_once(
    slack: LocalSlack, http_bot: BotServer
) -> None:
    envelope = mention_event(slack, "alice", "incident-response", f"Ev{uuid.uuid4().hex[:10]}")
    body = event(envelope)
    url = http_bot.url + "/slack/events"
    retry_first = {"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"}
    statuses = await asyncio.gather(
        post(url, body, {**sign(slack.signing_secret, body.data), **retry_first}),
        post(url, body, sign(slack.signing_secret, body.data)),
        post(url, body, {**sign(slack.signing_secret, body.data), "X-Slack-Retry-Num": "1"}),
    )
    assert [s for s, _ in statuses] == [200, 200, 200]
    await slack.wait_for(lambda: _replies(slack) >= 1, timeout=10)
    await asyncio.sleep(1.0)
    late, _ = await post(url, body, {**sign(slack.signing_secret, body.data), "X-Slack-Retry-Num": "3"})
    assert late == 200
    await asyncio.sleep(0.5)
    assert _replies(slack) == 1, "a repeated delivery was handled twice"

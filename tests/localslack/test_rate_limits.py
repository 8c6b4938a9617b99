"""Slack's rate limits are on by default: per-channel pace and workspace budget of chat.postMessage,
per-method tier budgets, Retry-After, and a refused call changing nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from localslack import LocalSlack
from localslack.limits import CHANNEL_PACE, per_minute_table
from tests.localslack.conftest import FAST


async def _post(client: AsyncWebClient, channel: str, text: str) -> int:
    """The HTTP status of one post; the SDK raises on 429, which is the answer under test."""
    try:
        await client.chat_postMessage(channel=channel, text=text)
    except SlackApiError as exc:
        return int(exc.response.status_code)
    return 200


async def _refused(call: Awaitable[Any]) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await call
    assert info.value.response.status_code == 429
    assert info.value.response["error"] == "ratelimited"
    return info.value


async def test_a_burst_to_one_channel_gets_three_then_429_until_retry_after(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    statuses = [await _post(client, "#general", f"burst {n}") for n in range(6)]
    assert statuses == [200, 200, 200, 429, 429, 429]
    refused = await _refused(client.chat_postMessage(channel="C0GENERAL", text="still too soon"))
    retry_after = int(refused.response.headers["Retry-After"])
    assert retry_after >= 1

    await asyncio.sleep(retry_after)
    assert await _post(client, "general", "after waiting") == 200
    assert [m.text for m in slack.messages("#general")] == ["burst 0", "burst 1", "burst 2", "after waiting"]
    assert [c.status for c in slack.calls("chat.postMessage")] == [200] * 3 + [429] * 4 + [200]
    assert slack.faults.refused["chat.postMessage"] == 4


async def test_each_channel_has_its_own_pace(slack: LocalSlack, client: AsyncWebClient) -> None:
    # The same channel named three ways is one budget; another channel has a full one.
    assert [await _post(client, ref, "x") for ref in ("#general", "general", "C0GENERAL", "#general")] == [
        200,
        200,
        200,
        429,
    ]
    assert [await _post(client, "#incident-response", "y") for _ in range(3)] == [200, 200, 200]
    assert len(slack.messages("#incident-response")) == 3


async def test_the_workspace_budget_spans_channels(slack: LocalSlack, client: AsyncWebClient) -> None:
    names = [f"load-{n}" for n in range(120)]
    for name in names:
        slack.state.create_channel(name, creator=slack.bot_user_id)
    # 3 posts in each of 120 channels keep every channel within its pace but ask for 360 of the
    # workspace's 300 (refilling 5 a second while the burst runs).
    started = time.monotonic()
    statuses = await asyncio.gather(*(_post(client, name, "x") for name in names for _ in range(3)))
    elapsed = time.monotonic() - started
    passed = statuses.count(200)
    assert 300 <= passed <= 300 + 5 * elapsed + 1
    assert statuses.count(429) == 360 - passed
    assert sum(len(slack.messages(f"#{name}")) for name in names) == passed, "a refused post was stored"


async def test_a_tier_2_method_refuses_its_21st_call(slack: LocalSlack, client: AsyncWebClient) -> None:
    for n in range(20):
        await client.conversations_create(name=f"room-{n}")
    refused = await _refused(client.conversations_create(name="room-20"))
    # Tier 2 refills 20 per minute: the next call is 3 seconds away.
    assert 1 <= int(refused.response.headers["Retry-After"]) <= 3
    assert not any(c.name == "room-20" for c in slack.state.channels.values()), "a refused call changed state"
    assert slack.calls("conversations.create")[-1].status == 429


async def test_other_chat_methods_are_budgeted_per_method_only(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="#general", text="v0")
    for n in range(5):
        await client.chat_update(channel="C0GENERAL", ts=posted["ts"], text=f"v{n + 1}")
        await client.chat_postEphemeral(channel="C0GENERAL", user="U0ALICE", text=f"only you {n}")
    assert slack.last_message("#general").text == "v5"  # type: ignore[union-attr]
    assert len(slack.ephemerals("alice", "#general")) == 5


async def test_without_rate_limits_nothing_is_refused() -> None:
    async with LocalSlack.running(timing=FAST, rate_limits=False) as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        assert not slack.faults.rate_limits_on
        assert {await _post(client, "#general", "x") for _ in range(30)} == {200}
        for n in range(25):
            await client.conversations_create(name=f"free-{n}")
        assert slack.faults.refused == {}


async def test_reset_restores_the_default_limits_with_full_budgets(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    slack.faults.disable_rate_limits()
    assert {await _post(client, "#general", "x") for _ in range(5)} == {200}
    slack.faults.enable_rate_limits()
    assert [await _post(client, "#general", "y") for _ in range(4)] == [200, 200, 200, 429]

    slack.faults.disable_rate_limits()
    slack.faults.reset()
    assert slack.faults.rate_limits_on
    assert slack.faults.refused == {}
    assert [await _post(client, "#general", "z") for _ in range(4)] == [200, 200, 200, 429]


async def test_an_override_replaces_slacks_budget_for_its_method(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    slack.faults.rate_limit("chat.postMessage", calls=5, per_seconds=60)
    assert [await _post(client, "#general", "x") for _ in range(6)] == [200] * 5 + [429]
    slack.faults.reset()
    assert await _post(client, "#general", "after reset") == 200


def test_the_budget_table_is_readable_and_read_only() -> None:
    table = per_minute_table()
    assert table["chat.postMessage"] == 300
    assert table["auth.test"] == 600
    assert (table["conversations.create"], table["chat.update"], table["views.open"]) == (20, 50, 100)
    assert (CHANNEL_PACE.capacity, CHANNEL_PACE.per_second) == (3.0, 1.0)
    with pytest.raises(TypeError):
        table["chat.postMessage"] = 1  # type: ignore[index]

"""Block Kit limits as Slack reports them, and the rate-limit / injected-failure knobs."""

from __future__ import annotations

import time
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from localslack import LocalSlack
from localslack.blockkit import validate_blocks


def _button(**over: Any) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": "Go"}, "action_id": "go", **over}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


CONFIRM = {
    "title": {"type": "plain_text", "text": "Sure?"},
    "text": {"type": "mrkdwn", "text": "Really"},
    "confirm": {"type": "plain_text", "text": "Yes"},
    "deny": {"type": "plain_text", "text": "No"},
}

OVER_LIMIT = [
    ([_section("x") for _ in range(51)], "no more than 50 items allowed [json-pointer:/blocks]"),
    ([_section("x" * 3001)], "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"),
    (
        [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
        "must be less than 151 characters [json-pointer:/blocks/0/text/text]",
    ),
    (
        [{"type": "actions", "elements": [_button(text={"type": "plain_text", "text": "b" * 76})]}],
        "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
    ),
    (
        [{"type": "actions", "elements": [_button(value="v" * 2001)]}],
        "must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]",
    ),
    (
        [{"type": "actions", "elements": [_button(action_id="a" * 256)]}],
        "must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]",
    ),
    (
        [{**_section("x"), "block_id": "b" * 256}],
        "must be less than 256 characters [json-pointer:/blocks/0/block_id]",
    ),
    (
        [{"type": "actions", "elements": [_button(action_id=f"a{i}") for i in range(26)]}],
        "no more than 25 items allowed [json-pointer:/blocks/0/elements]",
    ),
    (
        [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
        "no more than 10 items allowed [json-pointer:/blocks/0/elements]",
    ),
    (
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
        "no more than 10 items allowed [json-pointer:/blocks/0/fields]",
    ),
    (
        [
            {
                "type": "actions",
                "elements": [
                    _button(confirm={**CONFIRM, "title": {"type": "plain_text", "text": "t" * 101}})
                ],
            }
        ],
        "must be less than 101 characters [json-pointer:/blocks/0/elements/0/confirm/title/text]",
    ),
    (
        [
            {
                "type": "actions",
                "elements": [
                    _button(confirm={**CONFIRM, "confirm": {"type": "plain_text", "text": "y" * 31}})
                ],
            }
        ],
        "must be less than 31 characters [json-pointer:/blocks/0/elements/0/confirm/confirm/text]",
    ),
    ([{"type": "hologram"}], "failed to match all allowed schemas [json-pointer:/blocks/0]"),
    (
        [{"type": "actions", "elements": [{"type": "laser_pointer", "action_id": "x"}]}],
        "failed to match all allowed schemas [json-pointer:/blocks/0/elements/0]",
    ),
    (
        [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "x"},
                "accessory": {
                    "type": "static_select",
                    "action_id": "s",
                    "options": [{"text": {"type": "plain_text", "text": "o"}, "value": "v" * 151}],
                },
            }
        ],
        "must be less than 151 characters [json-pointer:/blocks/0/accessory/options/0/value]",
    ),
]


@pytest.mark.parametrize(("blocks", "expected"), OVER_LIMIT)
async def test_over_limit_blocks_are_rejected_like_slack(
    client: AsyncWebClient, blocks: list[dict[str, Any]], expected: str
) -> None:
    for call in (
        client.chat_postMessage(channel="C0GENERAL", text="t", blocks=blocks),
        client.chat_postEphemeral(channel="C0GENERAL", user="U0ALICE", text="t", blocks=blocks),
    ):
        with pytest.raises(SlackApiError) as info:
            await call
        assert info.value.response["error"] == "invalid_blocks"
        assert expected in info.value.response["errors"]
        assert f"[ERROR] {expected}" in info.value.response["response_metadata"]["messages"]


async def test_update_validates_blocks_too(client: AsyncWebClient) -> None:
    ts = (await client.chat_postMessage(channel="C0GENERAL", text="t"))["ts"]
    with pytest.raises(SlackApiError) as info:
        await client.chat_update(channel="C0GENERAL", ts=ts, text="t", blocks=[_section("x" * 3001)])
    assert info.value.response["error"] == "invalid_blocks"
    with pytest.raises(SlackApiError) as info:
        await client.chat_update(channel="C0GENERAL", ts=ts, text="x" * 40_001)
    assert info.value.response["error"] == "msg_too_long"


def test_every_sdk_block_type_and_common_element_is_accepted() -> None:
    option = {"text": {"type": "plain_text", "text": "P1"}, "value": "p1"}
    elements = [
        _button(action_id="b", style="danger", confirm=CONFIRM),
        {"type": "static_select", "action_id": "s", "options": [option]},
        {
            "type": "multi_static_select",
            "action_id": "ms",
            "option_groups": [{"label": {"type": "plain_text", "text": "g"}, "options": [option]}],
        },
        {"type": "overflow", "action_id": "o", "options": [option] * 5},
        {"type": "datepicker", "action_id": "d", "initial_date": "2025-01-31"},
        {"type": "timepicker", "action_id": "t", "initial_time": "09:30"},
        {"type": "checkboxes", "action_id": "c", "options": [option]},
        {"type": "radio_buttons", "action_id": "r", "options": [option]},
        {"type": "users_select", "action_id": "u"},
        {"type": "conversations_select", "action_id": "cv"},
    ]
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Incident"}},
        _section("body"),
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": "*a*"}],
            "accessory": _button(action_id="acc"),
        },
        {"type": "divider"},
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": "ctx"},
                {"type": "image", "image_url": "https://x/i.png", "alt_text": "i"},
            ],
        },
        {"type": "actions", "elements": elements},
        {"type": "image", "image_url": "https://x/i.png", "alt_text": "graph"},
        {
            "type": "input",
            "label": {"type": "plain_text", "text": "Title"},
            "element": {"type": "plain_text_input", "action_id": "title", "max_length": 3000},
        },
        {
            "type": "rich_text",
            "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": "x"}]}],
        },
        {"type": "markdown", "text": "**bold**"},
        {"type": "file", "external_id": "ext", "source": "remote"},
        {
            "type": "video",
            "alt_text": "v",
            "title": {"type": "plain_text", "text": "v"},
            "video_url": "https://x/v",
            "thumbnail_url": "https://x/t.png",
        },
        {"type": "table", "rows": []},
    ]
    assert validate_blocks(blocks) == []
    assert validate_blocks(
        [{"type": "actions", "elements": [{**elements[4], "initial_date": "31/01/2025"}]}]
    ) == ["must match format YYYY-MM-DD [json-pointer:/blocks/0/elements/0/initial_date]"]


async def test_modal_limits_allow_100_blocks_but_not_101(slack: LocalSlack, client: AsyncWebClient) -> None:
    def view(n: int, title: str = "Declare") -> dict[str, Any]:
        return {
            "type": "modal",
            "title": {"type": "plain_text", "text": title},
            "blocks": [_section("x")] * n,
        }

    opened = await client.views_open(trigger_id=slack.new_trigger_id("alice"), view=view(100))
    assert len(opened["view"]["blocks"]) == 100
    with pytest.raises(SlackApiError) as info:
        await client.views_open(trigger_id=slack.new_trigger_id("alice"), view=view(101))
    assert info.value.response["error"] == "invalid_arguments"
    assert info.value.response["response_metadata"]["messages"] == [
        "[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]"
    ]
    with pytest.raises(SlackApiError) as info:
        await client.views_open(trigger_id=slack.new_trigger_id("alice"), view=view(1, "t" * 25))
    assert info.value.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"
    ]


async def test_rate_limit_429_is_retried_by_the_sdk_handler(slack: LocalSlack) -> None:
    slack.faults.rate_limit("chat.postMessage", calls=1, per_seconds=1.0)
    bare = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    await bare.chat_postMessage(channel="C0GENERAL", text="first")
    with pytest.raises(SlackApiError) as info:
        await bare.chat_postMessage(channel="C0GENERAL", text="limited")
    assert info.value.response.status_code == 429
    assert info.value.response["error"] == "ratelimited"
    assert info.value.response.headers["Retry-After"] == "1"

    retrying = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    retrying.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    started = time.monotonic()
    resp = await retrying.chat_postMessage(channel="C0GENERAL", text="eventually")
    assert resp["ok"] is True
    assert time.monotonic() - started >= 0.5
    assert [c.status for c in slack.calls("chat.postMessage")][-2:] == [429, 200]
    assert [m.text for m in slack.messages("#general")] == ["first", "eventually"]


async def test_tier_budgets_switch_on(slack: LocalSlack, client: AsyncWebClient) -> None:
    slack.faults.enable_rate_limits()
    for _ in range(20):
        await client.conversations_setTopic(channel="C0GENERAL", topic="t")
    with pytest.raises(SlackApiError) as info:
        await client.conversations_setTopic(channel="C0GENERAL", topic="t")
    assert info.value.response.status_code == 429
    assert 1 <= int(info.value.response.headers["Retry-After"]) <= 60
    slack.faults.reset()
    await client.conversations_setTopic(channel="C0GENERAL", topic="t")


async def test_injected_500_surfaces_and_is_retried(slack: LocalSlack) -> None:
    slack.faults.fail_next("users.info", times=1, status=500)
    bare = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    with pytest.raises(SlackApiError) as info:
        await bare.users_info(user="U0ALICE")
    assert info.value.response.status_code == 500

    slack.faults.fail_next("users.info", times=2, status=503)
    retrying = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    retrying.retry_handlers.append(AsyncServerErrorRetryHandler(max_retry_count=2))
    assert (await retrying.users_info(user="U0ALICE"))["user"]["name"] == "alice"
    assert [c.status for c in slack.calls("users.info")] == [500, 503, 503, 200]


async def test_injected_ok_false_error(slack: LocalSlack, client: AsyncWebClient) -> None:
    slack.faults.fail_next("chat.postMessage", status=200, error="team_access_not_granted")
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="C0GENERAL", text="x")
    assert info.value.response["error"] == "team_access_not_granted"
    await client.chat_postMessage(channel="C0GENERAL", text="x")

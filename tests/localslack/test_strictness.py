"""Where Slack is strict the emulator is too: repeated block_id/action_id, malformed history bounds,
and the full user and usergroup objects the docs' examples show."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from localslack import LocalSlack


def _section(text: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if block_id is not None:
        block["block_id"] = block_id
    return block


def _button(action_id: str) -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": action_id}}


def _modal(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "modal", "title": {"type": "plain_text", "text": "Declare"}, "blocks": blocks}


TWICE = [_section("a", "card"), _section("b", "card")]
TWO_BUTTONS_ONE_ID = [{"type": "actions", "block_id": "next", "elements": [_button("go"), _button("go")]}]


async def test_a_repeated_block_id_is_refused_in_every_message_method(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="#general", text="fine", blocks=[_section("a", "card")])
    calls = [
        client.chat_postMessage(channel="#general", text="x", blocks=TWICE),
        client.chat_update(channel="C0GENERAL", ts=posted["ts"], text="x", blocks=TWICE),
        client.chat_postEphemeral(channel="C0GENERAL", user="U0ALICE", text="x", blocks=TWICE),
    ]
    for call in calls:
        with pytest.raises(SlackApiError) as info:
            await call
        assert info.value.response["error"] == "invalid_blocks"
        assert info.value.response["errors"] == [
            'duplicate block_id "card" [json-pointer:/blocks/1/block_id]'
        ]
    assert [m.text for m in slack.messages("#general")] == ["fine"]
    assert slack.ephemerals("alice") == []


async def test_a_repeated_action_id_within_one_block_is_refused(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="#general", text="x", blocks=TWO_BUTTONS_ONE_ID)
    assert info.value.response["error"] == "invalid_blocks"
    assert info.value.response["response_metadata"]["messages"] == [
        '[ERROR] duplicate action_id "go" [json-pointer:/blocks/0/elements/1/action_id]'
    ]
    # The same action_id in two blocks is fine: the block_id tells the actions apart.
    apart = [
        {"type": "actions", "block_id": "one", "elements": [_button("go")]},
        {"type": "actions", "block_id": "two", "elements": [_button("go")]},
    ]
    await client.chat_postMessage(channel="#general", text="ok", blocks=apart)
    assert [m.text for m in slack.messages("#general")] == ["ok"]


async def test_views_refuse_repeated_ids_too(slack: LocalSlack, client: AsyncWebClient) -> None:
    # Slack answers views.* block errors with invalid_arguments and the reason in response_metadata.
    with pytest.raises(SlackApiError) as info:
        await client.views_open(trigger_id=slack.new_trigger_id("alice"), view=_modal(TWICE))
    assert info.value.response["error"] == "invalid_arguments"
    assert info.value.response["response_metadata"]["messages"] == [
        '[ERROR] duplicate block_id "card" [json-pointer:/view/blocks/1/block_id]'
    ]
    opened = await client.views_open(trigger_id=slack.new_trigger_id("alice"), view=_modal([_section("a")]))
    view_id = opened["view"]["id"]
    refused = [
        client.views_update(view_id=view_id, view=_modal(TWO_BUTTONS_ONE_ID)),
        client.views_push(trigger_id=slack.new_trigger_id("alice"), view=_modal(TWICE)),
        client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": TWICE}),
    ]
    for call in refused:
        with pytest.raises(SlackApiError) as info:
            await call
        assert info.value.response["error"] == "invalid_arguments"
        assert "duplicate" in info.value.response["response_metadata"]["messages"][0]
    assert slack.current_view("alice").blocks[0]["text"]["text"] == "a"  # type: ignore[union-attr]
    assert slack.home_view("alice") is None


@pytest.mark.parametrize("method", ["conversations_history", "conversations_replies"])
async def test_malformed_history_bounds_are_slack_errors(
    slack: LocalSlack, client: AsyncWebClient, method: str
) -> None:
    first = await client.chat_postMessage(channel="#general", text="first")
    read = getattr(client, method)
    for bound, value in (("oldest", "yesterday"), ("latest", "1712345678.00a1"), ("oldest", "-5")):
        with pytest.raises(SlackApiError) as info:
            await read(channel="C0GENERAL", ts=first["ts"], **{bound: value})
        assert info.value.response.status_code == 200
        assert info.value.response["error"] == f"invalid_ts_{bound}"
    seconds = first["ts"].split(".")[0]
    found = await read(channel="C0GENERAL", ts=first["ts"], oldest=seconds, latest=str(int(seconds) + 1))
    assert [m["text"] for m in found["messages"]] == ["first"]


def _assert_full_user(user: dict[str, Any]) -> None:
    top = {
        "id", "team_id", "name", "deleted", "color", "real_name", "tz", "tz_label", "tz_offset", "profile",
        "is_admin", "is_owner", "is_primary_owner", "is_restricted", "is_ultra_restricted", "is_bot",
        "is_app_user", "updated", "is_email_confirmed", "who_can_share_contact_card",
    }  # fmt: skip
    assert top <= set(user)
    profile = {
        "title", "phone", "real_name", "real_name_normalized", "display_name", "display_name_normalized",
        "email", "team", "image_24", "image_32", "image_48", "image_72", "image_192", "image_512",
    }  # fmt: skip
    assert profile <= set(user["profile"])


async def test_user_methods_return_the_full_user_object(client: AsyncWebClient) -> None:
    info = (await client.users_info(user="U0ALICE"))["user"]
    _assert_full_user(info)
    assert (info["name"], info["real_name"], info["tz"], info["is_admin"]) == (
        "alice",
        "Alice Anders",
        "Europe/London",
        False,
    )
    assert info["profile"]["title"] == "On-call engineer"
    assert info["profile"]["image_48"].endswith("U0ALICE_48.png")
    assert info["is_email_confirmed"] is True
    assert len(info["color"]) == 6
    listed = (await client.users_list())["members"]
    assert {u["id"] for u in listed} >= {"U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"}
    for user in listed:
        if not user["is_bot"]:
            _assert_full_user(user)
    assert next(u for u in listed if u["id"] == "U0ALICE") == info
    assert (await client.users_lookupByEmail(email="alice@opsbot-demo.example"))["user"] == info
    assert (await client.users_profile_get(user="U0ALICE"))["profile"] == info["profile"]


async def test_usergroups_list_returns_full_usergroup_objects(client: AsyncWebClient) -> None:
    groups = {g["handle"]: g for g in (await client.usergroups_list(include_users=True))["usergroups"]}
    oncall = groups["oncall"]
    assert {
        "id", "team_id", "is_usergroup", "name", "description", "handle", "is_external", "date_create",
        "date_update", "date_delete", "auto_type", "created_by", "updated_by", "deleted_by", "prefs",
        "users", "user_count",
    } <= set(oncall)  # fmt: skip
    assert (oncall["id"], oncall["users"], oncall["user_count"]) == ("S0ONCALL", ["U0ALICE", "U0DAVE"], 2)
    assert oncall["prefs"] == {"channels": [], "groups": []}
    assert (oncall["is_external"], oncall["date_delete"]) == (False, 0)
    without = (await client.usergroups_list())["usergroups"]
    assert all("users" not in g for g in without)

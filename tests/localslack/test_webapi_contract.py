"""Contract: the unmodified AsyncWebClient against every emulated method, success and main error paths."""

from __future__ import annotations

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from localslack import LocalSlack


async def _error(coro: object) -> str:
    with pytest.raises(SlackApiError) as info:
        await coro  # type: ignore[misc]
    return str(info.value.response["error"])


async def test_auth_test_reports_bot_identity_and_scopes(slack: LocalSlack, client: AsyncWebClient) -> None:
    resp = await client.auth_test()
    assert resp["team_id"] == "T0OPSBOT"
    assert resp["user_id"] == slack.bot_user_id
    assert resp["bot_id"] == slack.bot_id
    assert "chat:write" in resp.headers["x-oauth-scopes"].split(",")


async def test_auth_errors(slack: LocalSlack) -> None:
    assert (
        await _error(AsyncWebClient(token="xoxb-nope", base_url=slack.api_url).auth_test()) == "invalid_auth"
    )
    assert await _error(AsyncWebClient(base_url=slack.api_url).auth_test()) == "not_authed"
    assert await _error(AsyncWebClient(token=slack.app_token, base_url=slack.api_url).auth_test()) == (
        "not_allowed_token_type"
    )
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    assert await _error(client.api_call("chat.flyToMoon")) == "unknown_method"


async def test_token_may_come_as_a_form_param(slack: LocalSlack) -> None:
    async with (
        aiohttp.ClientSession(trust_env=False) as http,
        http.post(slack.api_url + "auth.test", data={"token": slack.bot_token}) as resp,
    ):
        body = await resp.json()
    assert body["ok"] is True
    assert slack.calls("auth.test")[-1].token == slack.bot_token


async def test_post_update_delete_message(slack: LocalSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="#incident-response", text="hello")
    ts = posted["ts"]
    assert posted["channel"] == "C0INCIDENT"
    assert posted["message"]["bot_id"] == slack.bot_id
    assert slack.last_message("incident-response").text == "hello"  # type: ignore[union-attr]

    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*updated*"}}]
    updated = await client.chat_update(channel="C0INCIDENT", ts=ts, text="updated", blocks=blocks)
    assert updated["message"]["edited"]["user"] == slack.bot_user_id
    stored = slack.message("#incident-response", ts)
    assert stored.text == "updated"
    assert stored.blocks
    assert stored.blocks[0]["block_id"]

    await client.chat_delete(channel="C0INCIDENT", ts=ts)
    assert slack.messages("#incident-response") == []
    assert await _error(client.chat_delete(channel="C0INCIDENT", ts=ts)) == "message_not_found"
    assert (
        await _error(client.chat_update(channel="C0INCIDENT", ts="1.000001", text="x")) == "message_not_found"
    )


async def test_post_errors(slack: LocalSlack, client: AsyncWebClient) -> None:
    assert await _error(client.chat_postMessage(channel="C404", text="x")) == "channel_not_found"
    with pytest.warns(UserWarning, match="top-level `text`"):
        assert await _error(client.chat_postMessage(channel="#general")) == "no_text"
    assert await _error(client.chat_postMessage(channel="#general", text="x" * 40_001)) == "msg_too_long"
    assert await _error(client.chat_postMessage(channel="#general", text="x", thread_ts="1.2")) == (
        "thread_not_found"
    )
    await slack.post("alice", "#general", "a user's message")
    user_msg = slack.last_message("#general")
    assert user_msg is not None
    assert await _error(client.chat_update(channel="C0GENERAL", ts=user_msg.ts, text="x")) == (
        "cant_update_message"
    )
    assert await _error(client.chat_delete(channel="C0GENERAL", ts=user_msg.ts)) == "cant_delete_message"


async def test_post_to_channel_bot_is_not_in(slack: LocalSlack, client: AsyncWebClient) -> None:
    ch = slack.state.create_channel("elsewhere", "U0ALICE")
    assert await _error(client.chat_postMessage(channel=ch.id, text="x")) == "not_in_channel"
    private = slack.state.create_channel("secret", "U0ALICE", is_private=True)
    assert await _error(client.chat_postMessage(channel=private.id, text="x")) == "channel_not_found"
    assert await _error(client.conversations_history(channel=ch.id)) == "not_in_channel"
    await client.conversations_join(channel=ch.id)
    await client.chat_postMessage(channel=ch.id, text="now a member")
    assert await _error(client.conversations_join(channel=private.id)) == "channel_not_found"


async def test_thread_replies_and_broadcast(slack: LocalSlack, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel="#general", text="parent")
    await client.chat_postMessage(channel="#general", text="r1", thread_ts=parent["ts"])
    await client.chat_postMessage(channel="#general", text="r2", thread_ts=parent["ts"], reply_broadcast=True)
    assert [m.text for m in slack.messages("#general")] == ["parent", "r2"]
    assert slack.last_reply("#general", parent["ts"]).text == "r2"  # type: ignore[union-attr]
    history = await client.conversations_history(channel="C0GENERAL")
    assert history["messages"][1]["reply_count"] == 2


async def test_dm_by_user_id(slack: LocalSlack, client: AsyncWebClient) -> None:
    resp = await client.chat_postMessage(channel="U0ALICE", text="psst")
    assert resp["channel"].startswith("D")
    opened = await client.conversations_open(users="U0ALICE")
    assert opened["channel"]["id"] == resp["channel"]


async def test_post_ephemeral(slack: LocalSlack, client: AsyncWebClient) -> None:
    resp = await client.chat_postEphemeral(channel="#general", user="U0BOB", text="only bob")
    assert resp["message_ts"]
    assert [e.text for e in slack.ephemerals("bob")] == ["only bob"]
    assert slack.ephemerals("alice") == []
    ch = slack.state.create_channel("tiny", slack.bot_user_id)
    assert await _error(client.chat_postEphemeral(channel=ch.id, user="U0BOB", text="x")) == (
        "user_not_in_channel"
    )
    assert await _error(client.chat_postEphemeral(channel="#general", user="U404", text="x")) == (
        "user_not_found"
    )


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "invalid_name_required"),
        ("x" * 81, "invalid_name_maxlength"),
        ("--__", "invalid_name_punctuation"),
        ("Incident", "invalid_name_specials"),
        ("inc 42", "invalid_name_specials"),
        ("inc.42", "invalid_name_specials"),
        ("general", "name_taken"),
    ],
)
async def test_conversations_create_name_rules(client: AsyncWebClient, name: str, error: str) -> None:
    assert await _error(client.conversations_create(name=name)) == error


async def test_conversations_lifecycle(slack: LocalSlack, client: AsyncWebClient) -> None:
    created = await client.conversations_create(name="inc-2024-0001_db", is_private=False)
    cid = created["channel"]["id"]
    assert created["channel"]["is_member"] is True
    await client.conversations_invite(channel=cid, users=["U0ALICE", "U0BOB"])
    assert await _error(client.conversations_invite(channel=cid, users="U0ALICE")) == "already_in_channel"
    assert await _error(client.conversations_invite(channel=cid, users="U404")) == "user_not_found"
    assert await _error(client.conversations_invite(channel=cid, users=slack.bot_user_id)) == (
        "cant_invite_self"
    )
    await client.conversations_setTopic(channel=cid, topic="SEV1: db down")
    assert await _error(client.conversations_setTopic(channel=cid, topic="x" * 251)) == "too_long"
    info = await client.conversations_info(channel=cid, include_num_members=True)
    assert info["channel"]["topic"]["value"] == "SEV1: db down"
    assert info["channel"]["num_members"] == 3
    assert slack.channel("inc-2024-0001_db").members == [slack.bot_user_id, "U0ALICE", "U0BOB"]
    private = await client.conversations_create(name="inc-private", is_private=True)
    listed = await client.conversations_list(types="public_channel,private_channel", limit=2)
    names = [c["name"] for c in listed["channels"]]
    cursor = listed["response_metadata"]["next_cursor"]
    while cursor:
        page = await client.conversations_list(types="public_channel,private_channel", limit=2, cursor=cursor)
        names += [c["name"] for c in page["channels"]]
        cursor = page["response_metadata"]["next_cursor"]
    assert names == ["incident-response", "general", "inc-2024-0001_db", "inc-private"]
    assert private["channel"]["is_private"] is True
    assert await _error(client.conversations_info(channel="C404")) == "channel_not_found"
    assert await _error(client.conversations_list(cursor="garbage")) == "invalid_cursor"


async def test_pins_and_reactions(slack: LocalSlack, client: AsyncWebClient) -> None:
    ts = (await client.chat_postMessage(channel="#general", text="pin me"))["ts"]
    await client.pins_add(channel="C0GENERAL", timestamp=ts)
    assert await _error(client.pins_add(channel="C0GENERAL", timestamp=ts)) == "already_pinned"
    assert await _error(client.pins_add(channel="C0GENERAL", timestamp="1.1")) == "message_not_found"
    items = (await client.pins_list(channel="C0GENERAL"))["items"]
    assert [i["message"]["ts"] for i in items] == [ts]
    await client.pins_remove(channel="C0GENERAL", timestamp=ts)
    assert await _error(client.pins_remove(channel="C0GENERAL", timestamp=ts)) == "no_pin"

    await client.reactions_add(channel="C0GENERAL", timestamp=ts, name="eyes")
    assert await _error(client.reactions_add(channel="C0GENERAL", timestamp=ts, name=":eyes:")) == (
        "already_reacted"
    )
    assert await _error(client.reactions_add(channel="C0GENERAL", timestamp="9.9", name="eyes")) == (
        "message_not_found"
    )
    got = await client.reactions_get(channel="C0GENERAL", timestamp=ts)
    assert got["message"]["reactions"] == [{"name": "eyes", "users": [slack.bot_user_id], "count": 1}]
    await client.reactions_remove(channel="C0GENERAL", timestamp=ts, name="eyes")
    assert (
        await _error(client.reactions_remove(channel="C0GENERAL", timestamp=ts, name="eyes")) == "no_reaction"
    )


async def test_users_and_usergroups(slack: LocalSlack, client: AsyncWebClient) -> None:
    alice = (await client.users_info(user="U0ALICE"))["user"]
    assert alice["profile"]["display_name"] == "alice"
    assert alice["profile"]["title"] == "On-call engineer"
    assert await _error(client.users_info(user="U404")) == "user_not_found"
    members = (await client.users_list())["members"]
    assert {m["name"] for m in members} >= {"alice", "bob", "carol", "dave", "opsbot"}
    groups = (await client.usergroups_list(include_users=True))["usergroups"]
    assert {g["handle"]: g["users"] for g in groups} == {
        "oncall": ["U0ALICE", "U0DAVE"],
        "approvers": ["U0BOB", "U0CAROL"],
        "managers": ["U0CAROL"],
    }
    assert (await client.usergroups_users_list(usergroup="S0APPROVERS"))["users"] == ["U0BOB", "U0CAROL"]
    assert await _error(client.usergroups_users_list(usergroup="S404")) == "no_such_subteam"
    found = await client.users_lookupByEmail(email="carol@opsbot-demo.example")
    assert found["user"]["id"] == "U0CAROL"


async def test_bookmarks_and_permalink(slack: LocalSlack, client: AsyncWebClient) -> None:
    resp = await client.bookmarks_add(
        channel_id="C0INCIDENT", title="Runbook", type="link", link="https://runbooks.example/db"
    )
    assert resp["bookmark"]["title"] == "Runbook"
    assert slack.channel("#incident-response").bookmarks[0].link == "https://runbooks.example/db"
    assert await _error(
        client.bookmarks_add(channel_id="C404", title="x", type="link", link="https://x")
    ) == ("channel_not_found")
    ts = (await client.chat_postMessage(channel="#general", text="link me"))["ts"]
    link = await client.chat_getPermalink(channel="C0GENERAL", message_ts=ts)
    assert link["permalink"].endswith(ts.replace(".", ""))


async def test_apps_connections_open_needs_app_token(slack: LocalSlack, client: AsyncWebClient) -> None:
    resp = await client.apps_connections_open(app_token=slack.app_token)
    assert resp["url"].startswith(f"ws://127.0.0.1:{slack.port}/link/?ticket=")
    assert await _error(client.apps_connections_open(app_token=slack.bot_token)) == "not_allowed_token_type"
    assert await _error(client.apps_connections_open(app_token="xapp-wrong")) == "invalid_auth"


async def test_recorder_sees_arguments_from_query_json_and_form(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    await client.conversations_setTopic(channel="C0GENERAL", topic="query args")
    await client.chat_postMessage(channel="C0GENERAL", text="json args")
    await client.api_call("chat.postMessage", data={"channel": "C0GENERAL", "text": "form args"})
    assert slack.calls("conversations.setTopic")[0].args == {"channel": "C0GENERAL", "topic": "query args"}
    assert [c.args["text"] for c in slack.calls("chat.postMessage")] == ["json args", "form args"]
    assert all(c.ok for c in slack.calls())

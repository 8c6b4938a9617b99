"""The Slack-like web client: its page, /ui/api endpoints and live event stream, on a real emulator."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from localslack import (
    AppSeed,
    ChannelSeed,
    LocalSlack,
    SlashCommandSeed,
    WorkspaceSeed,
)

from .conftest import FAST, serve_bolt, serve_handler
from .incident_app import install

JSONDict = dict[str, Any]

SEED = WorkspaceSeed(
    app=AppSeed(
        commands=[
            SlashCommandSeed(command="/incident", description="Run an incident", usage_hint="declare <sev>"),
            SlashCommandSeed(command="/ping", description="Is the bot there?"),
        ]
    ),
    channels=[
        *WorkspaceSeed().channels,
        ChannelSeed(id="C0SECRET", name="secret", is_private=True, members=["bob", "bot"]),
    ],
)


@pytest.fixture
async def http(slack: LocalSlack) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=slack.url) as session:
        yield session


async def get(http: aiohttp.ClientSession, path: str, status: int = 200) -> JSONDict:
    async with http.get(path) as resp:
        assert resp.status == status, await resp.text()
        assert resp.content_type == "application/json"
        body: JSONDict = await resp.json()
        return body


async def post(http: aiohttp.ClientSession, path: str, body: Any, status: int = 200) -> JSONDict:
    async with http.post(path, json=body) as resp:
        assert resp.status == status, await resp.text()
        answer: JSONDict = await resp.json()
        return answer


class EventReader:
    """Parses a text/event-stream response into (event, data) pairs."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp

    async def next(self, name: str, timeout: float = 5.0) -> JSONDict:
        async with asyncio.timeout(timeout):
            event, data = "", []
            while True:
                raw = await self._resp.content.readline()
                if not raw:
                    raise EOFError("the event stream ended")
                line = raw.decode().rstrip("\n")
                if line:
                    field, _, value = line.partition(":")
                    if field == "event":
                        event = value.strip()
                    elif field == "data":
                        data.append(value.strip())
                    continue
                if event == name:
                    parsed: JSONDict = json.loads("\n".join(data))
                    return parsed
                event, data = "", []


@asynccontextmanager
async def events(http: aiohttp.ClientSession) -> AsyncIterator[EventReader]:
    async with http.get("/ui/events") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        yield EventReader(resp)


def texts(answer: JSONDict) -> list[str]:
    return [m["text"] for m in answer["messages"]]


async def test_page_and_static_assets_are_served(http: aiohttp.ClientSession) -> None:
    async with http.get("/") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        page = await resp.text()
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert '<script type="module" src="/static/app.js">' in page
    assert 'data-testid="user-switcher"' in page
    assert "Nothing leaves this machine." in page
    for name, content_type in [
        ("app.js", "text/javascript"),
        ("app.css", "text/css"),
        ("mrkdwn.js", "text/javascript"),
        ("blocks.js", "text/javascript"),
    ]:
        async with http.get(f"/static/{name}") as resp:
            assert resp.status == 200, name
            assert resp.content_type == content_type
            assert await resp.read()
    for missing in ("/static/nope.js", "/static/..%2Fserver.py", "/static/app.py"):
        async with http.get(missing) as resp:
            assert resp.status == 404, missing


async def test_bootstrap_lists_the_users_channels_and_the_apps_commands() -> None:
    async with (
        LocalSlack.running(SEED, timing=FAST) as slack,
        aiohttp.ClientSession(base_url=slack.url) as http,
    ):
        alice = await get(http, "/ui/api/bootstrap?user=alice")
        bob = await get(http, "/ui/api/bootstrap?user=U0BOB")
        assert alice["ok"] is True
        assert alice["me"] == {
            "id": "U0ALICE",
            "name": "alice",
            "real_name": "Alice Anders",
            "display_name": "alice",
            "title": "On-call engineer",
            "is_bot": False,
        }
        assert [c["name"] for c in alice["channels"]] == ["incident-response", "general"]
        assert [c["name"] for c in bob["channels"]] == ["incident-response", "general", "secret"]
        assert "secret" not in [c["name"] for c in alice["all_channels"]]
        assert alice["commands"] == [
            {"command": "/incident", "description": "Run an incident", "usage_hint": "declare <sev>"},
            {"command": "/ping", "description": "Is the bot there?", "usage_hint": ""},
        ]
        assert alice["bot_user_id"] == "U0OPSBOT"
        assert {"id": "U0OPSBOT", "name": "opsbot"}.items() <= next(
            u for u in alice["users"] if u["is_bot"]
        ).items()
        assert isinstance(alice["version"], int)
        assert {g["handle"] for g in alice["usergroups"]} == {"oncall", "approvers", "managers"}
        assert (await get(http, "/ui/api/bootstrap?user=mallory", 404)) == {
            "ok": False,
            "error": "user_not_found",
        }
        assert (await get(http, "/ui/api/bootstrap", 400))["error"] == "missing_user"
        # Private channels are invisible to non-members, read or write.
        assert (await get(http, "/ui/api/channels/secret/messages?user=alice", 404))["error"] == (
            "channel_not_found"
        )
        assert (await get(http, "/ui/api/channels/secret/messages?user=bob"))["channel"]["is_private"]


async def test_commands_outside_the_apps_list_or_the_users_channels_are_refused() -> None:
    async with (
        LocalSlack.running(SEED, timing=FAST) as slack,
        aiohttp.ClientSession(base_url=slack.url) as http,
    ):
        unknown = await post(
            http, "/ui/api/command", {"user": "alice", "channel": "general", "text": "/nope x"}
        )
        assert unknown == {"ok": False, "error": "invalid_command", "detail": "/nope is not a valid command."}
        outside = await post(
            http, "/ui/api/command", {"user": "alice", "channel": "C0SECRET", "text": "/ping"}
        )
        assert outside == {"ok": False, "error": "alice is not in #secret"}
        # Nobody answers this emulator's deliveries: Slack's client says so.
        timeout = await post(http, "/ui/api/command", {"user": "bob", "channel": "secret", "text": "/ping"})
        assert timeout["ok"] is False
        assert timeout["error"] in ("operation_timeout", "dispatch_failed")


async def test_a_posted_message_lands_in_the_workspace_and_is_announced(
    slack: LocalSlack, http: aiohttp.ClientSession
) -> None:
    async with events(http) as stream:
        first = (await stream.next("change"))["version"]
        answer = await post(
            http,
            "/ui/api/message",
            {
                "user": "alice",
                "channel": "incident-response",
                "text": "@bob @oncall @here see #general & <b>this</b> a@b.example",
            },
        )
        assert answer["ok"] is True
        msg = slack.last_message("#incident-response")
        assert msg is not None
        assert msg.ts == answer["ts"]
        assert msg.user == "U0ALICE"
        # What Slack's client sends: escaped text, with people, groups and channels as references.
        assert msg.text == (
            "<@U0BOB> <!subteam^S0ONCALL|@oncall> <!here> see <#C0GENERAL|general> "
            "&amp; &lt;b&gt;this&lt;/b&gt; a@b.example"
        )
        assert (await stream.next("change"))["version"] > first
    shown = await get(http, "/ui/api/channels/C0INCIDENT/messages?user=bob")
    last = shown["messages"][-1]
    assert (last["ts"], last["user"], last["author"]["label"], last["ephemeral"]) == (
        msg.ts,
        "alice",
        "Alice Anders",
        False,
    )
    assert shown["topic"] == "Incidents are declared here"


async def test_driver_actions_announce_changes(slack: LocalSlack, http: aiohttp.ClientSession) -> None:
    async with events(http) as stream:
        first = (await stream.next("change"))["version"]
        await slack.post("dave", "#general", "from the driver")
        assert (await stream.next("change"))["version"] > first


async def test_ephemeral_messages_show_only_for_their_user(
    slack: LocalSlack, client: AsyncWebClient, http: aiohttp.ClientSession
) -> None:
    await slack.post("bob", "#incident-response", "before")
    await client.chat_postEphemeral(channel="C0INCIDENT", user="U0ALICE", text="psst")
    await slack.post("bob", "#incident-response", "after")
    alice = await get(http, "/ui/api/channels/C0INCIDENT/messages?user=alice")
    bob = await get(http, "/ui/api/channels/C0INCIDENT/messages?user=bob")
    assert texts(alice) == ["before", "psst", "after"]
    assert [m["ephemeral"] for m in alice["messages"]] == [False, True, False]
    assert alice["messages"][1]["user"] == "opsbot"
    assert alice["messages"][1]["ephemeral_id"] == alice["messages"][1]["ts"]
    assert texts(bob) == ["before", "after"]


async def test_rejected_app_calls_are_streamed_as_api_errors(
    slack: LocalSlack, client: AsyncWebClient, http: aiohttp.ClientSession
) -> None:
    msg = (await slack.post("bob", "#incident-response", "hi")).message
    assert msg is not None
    async with events(http) as stream:
        await stream.next("change")
        await client.reactions_add(channel="C0INCIDENT", timestamp=msg.ts, name="eyes")
        with pytest.raises(SlackApiError):
            # Apps branch on already_reacted; it is not worth a banner.
            await client.reactions_add(channel="C0INCIDENT", timestamp=msg.ts, name="eyes")
        with pytest.raises(SlackApiError):
            await client.chat_postMessage(channel="C0INCIDENT", text="x", blocks=[{"type": "section"}])
        rejected = await stream.next("api_error")
    assert rejected["method"] == "chat.postMessage"
    assert rejected["error"] == "invalid_blocks"
    assert "json-pointer:/blocks/0" in rejected["detail"]


async def test_rejected_response_url_posts_are_streamed_as_api_errors(
    slack: LocalSlack, http: aiohttp.ClientSession
) -> None:
    async def acking(request: web.Request) -> web.Response:
        return web.Response(status=200)

    async with serve_handler(acking) as url:
        slack.request_url = url
        d = await slack.slash("alice", "#general", "/anything")
    assert d.response_url is not None
    async with events(http) as stream:
        await stream.next("change")
        async with http.post(d.response_url, json={"text": "", "blocks": []}) as resp:
            assert resp.status == 400
        rejected = await stream.next("api_error")
    assert rejected == {"method": "response_url", "error": "no_text", "detail": ""}


async def test_a_slash_command_reaches_the_app_and_its_answers_appear(
    slack: LocalSlack, make_bolt: Callable[..., AsyncApp], http: aiohttp.ClientSession
) -> None:
    seen: JSONDict = {}
    app = make_bolt()
    install(app, seen)
    async with serve_bolt(app) as url:
        slack.request_url = url
        answer = await post(
            http,
            "/ui/api/command",
            {"user": "alice", "channel": "C0INCIDENT", "text": "/incident declare p1 db down for @bob"},
        )
        assert answer == {"ok": True}
        assert seen["command"]["text"] == "declare p1 db down for <@U0BOB|bob>"
        await slack.wait_for(lambda: slack.last_message("#incident-response"))
    shown = await get(http, "/ui/api/channels/incident-response/messages?user=alice")
    by_text = {m["text"]: m for m in shown["messages"]}
    assert by_text["Declaring: declare p1 db down for <@U0BOB|bob>"]["ephemeral"] is True
    card = by_text["Incident declared"]
    assert card["ephemeral"] is False
    assert card["author"] == {"id": "U0OPSBOT", "name": "opsbot", "label": "opsbot", "is_bot": True}
    assert card["blocks"][1]["elements"][0]["action_id"] == "ack_incident"
    views = (await get(http, "/ui/api/views?user=alice"))["views"]
    assert [(v["callback_id"], v["title"]["text"], v["submit"]["text"]) for v in views] == [
        ("declare", "Declare incident", "Declare")
    ]
    assert (await get(http, "/ui/api/views?user=bob"))["views"] == []


async def test_message_clicks_and_view_submissions_round_trip_through_the_app(
    slack: LocalSlack, make_bolt: Callable[..., AsyncApp], http: aiohttp.ClientSession
) -> None:
    app = make_bolt()
    install(app, {})
    async with serve_bolt(app) as url:
        slack.request_url = url
        await post(http, "/ui/api/command", {"user": "alice", "channel": "C0INCIDENT", "text": "/incident x"})
        card = await slack.wait_for(lambda: slack.last_message("#incident-response"))
        click = {
            "user": "bob",
            "container": {"type": "message", "channel": "C0INCIDENT", "ts": card.ts},
            "action_id": "ack_incident",
            "block_id": "incident_actions",
        }
        assert await post(http, "/ui/api/click", click) == {"ok": True}
        await slack.wait_for(lambda: card.text == "Acknowledged by <@U0BOB>")
        stale = await post(http, "/ui/api/click", {**click, "action_id": "gone"})
        assert stale["ok"] is False
        assert stale["error"] == "element_not_found"

        view = slack.current_view("alice")
        assert view is not None
        path = f"/ui/api/views/{view.id}/submit"
        empty = await post(http, path, {"user": "alice", "values": {"severity": {"severity": "p0"}}})
        assert empty == {"ok": True, "view_errors": {"title": "Please complete this required field."}}
        vague = await post(
            http,
            path,
            {"user": "alice", "values": {"title": {"title": "db"}, "severity": {"severity": "p0"}}},
        )
        assert vague == {"ok": True, "view_errors": {"title": "Too vague"}}
        shown = (await get(http, "/ui/api/views?user=alice"))["views"]
        assert shown[0]["errors"] == {"title": "Too vague"}
        assert shown[0]["state_values"]["title"]["title"]["value"] == "db"
        good = await post(
            http,
            path,
            {"user": "alice", "values": {"title": {"title": "db down"}, "severity": {"severity": "p0"}}},
        )
        assert good == {"ok": True, "view_errors": None, "view_id": None}
        await slack.wait_for(
            lambda: [m.text for m in slack.messages("#incident-response")][-1] == "p0: db down"
        )
    assert (await get(http, "/ui/api/views?user=alice"))["views"] == []


FORM: JSONDict = {
    "type": "modal",
    "callback_id": "form",
    "notify_on_close": True,
    "title": {"type": "plain_text", "text": "Form"},
    "submit": {"type": "plain_text", "text": "Send"},
    "blocks": [
        {
            "type": "input",
            "block_id": "note",
            "optional": True,
            "label": {"type": "plain_text", "text": "Note"},
            "element": {"type": "plain_text_input", "action_id": "note"},
        },
        {
            "type": "actions",
            "block_id": "tools",
            "elements": [
                {"type": "button", "action_id": "more", "text": {"type": "plain_text", "text": "More"}}
            ],
        },
    ],
}


def install_menu(app: AsyncApp, seen: JSONDict) -> None:
    """An app answering with an ephemeral menu whose button opens a modal the app then updates."""

    @app.command("/menu")
    async def menu(ack: AsyncAck) -> None:
        await ack(
            text="Pick one",
            blocks=[
                {
                    "type": "actions",
                    "block_id": "menu",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": "open_form",
                            "text": {"type": "plain_text", "text": "Go"},
                        },
                        {
                            "type": "static_select",
                            "action_id": "colour",
                            "options": [
                                {"text": {"type": "plain_text", "text": c}, "value": c}
                                for c in ("red", "blue")
                            ],
                        },
                    ],
                }
            ],
        )

    @app.action("colour")
    async def colour(ack: AsyncAck, body: JSONDict) -> None:
        await ack()
        seen["colour"] = body["actions"][0]["selected_option"]["value"]

    @app.action("open_form")
    async def open_form(ack: AsyncAck, body: JSONDict, respond: AsyncRespond, client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=FORM)
        await respond(replace_original=True, text="Form opened")

    @app.action("more")
    async def more(ack: AsyncAck, body: JSONDict, client: AsyncWebClient) -> None:
        await ack()
        extra = {"type": "section", "text": {"type": "mrkdwn", "text": "*More*"}}
        await client.views_update(
            view_id=body["view"]["id"], view={**FORM, "blocks": [*FORM["blocks"], extra]}
        )

    @app.view_closed("form")
    async def closed(ack: AsyncAck, body: JSONDict) -> None:
        await ack()
        seen["closed"] = body


async def test_ephemeral_and_modal_clicks_and_closing_a_modal(
    slack: LocalSlack, make_bolt: Callable[..., AsyncApp], http: aiohttp.ClientSession
) -> None:
    seen: JSONDict = {}
    app = make_bolt()
    install_menu(app, seen)
    async with serve_bolt(app) as url:
        slack.request_url = url
        assert (await post(http, "/ui/api/command", {"user": "dave", "channel": "general", "text": "/menu"}))[
            "ok"
        ]
        shown = await get(http, "/ui/api/channels/general/messages?user=dave")
        ephemeral = next(m for m in shown["messages"] if m["ephemeral"])
        container = {"type": "ephemeral", "ephemeral_id": ephemeral["ephemeral_id"]}
        assert ephemeral["blocks"][0]["elements"][1]["action_id"] == "colour"
        picked = {"user": "dave", "container": container, "action_id": "colour", "value": "blue"}
        assert await post(http, "/ui/api/click", picked) == {"ok": True}
        assert seen["colour"] == "blue"
        other = await post(http, "/ui/api/click", {**picked, "user": "alice"}, status=404)
        assert other == {"ok": False, "error": "message_not_found"}

        assert (await post(http, "/ui/api/click", {**picked, "action_id": "open_form", "value": None}))["ok"]
        await slack.wait_for(lambda: slack.ephemerals("dave", "#general")[0].text == "Form opened")
        view = await slack.wait_for(lambda: slack.current_view("dave"))
        first_hash = view.hash
        in_view = {"user": "dave", "container": {"type": "view", "view_id": view.id}, "action_id": "more"}
        assert await post(http, "/ui/api/click", in_view) == {"ok": True}
        await slack.wait_for(lambda: view.hash != first_hash)
        shown_views = (await get(http, "/ui/api/views?user=dave"))["views"]
        assert [b["type"] for b in shown_views[0]["blocks"]] == ["input", "actions", "section"]

        assert await post(http, f"/ui/api/views/{view.id}/close", {"user": "dave"}) == {"ok": True}
        assert (await get(http, "/ui/api/views?user=dave"))["views"] == []
        assert seen["closed"]["type"] == "view_closed"
        assert seen["closed"]["view"]["id"] == view.id
        again = await post(http, f"/ui/api/views/{view.id}/close", {"user": "dave"}, status=404)
        assert again == {"ok": False, "error": "view_not_found"}


async def test_reactions_and_pins(slack: LocalSlack, http: aiohttp.ClientSession) -> None:
    msg = (await slack.post("bob", "#general", "deploy done")).message
    assert msg is not None
    react = {"user": "alice", "channel": "C0GENERAL", "ts": msg.ts, "name": ":dart:", "add": True}
    assert await post(http, "/ui/api/reactions", react) == {"ok": True}
    assert await post(http, "/ui/api/reactions", react) == {"ok": False, "error": "already_reacted"}
    assert (await post(http, "/ui/api/reactions", {**react, "name": "no spaces"}))["error"] == "invalid_name"
    pin = {"user": "alice", "channel": "general", "ts": msg.ts, "add": True}
    assert await post(http, "/ui/api/pins", pin) == {"ok": True}
    assert await post(http, "/ui/api/pins", pin) == {"ok": False, "error": "already_pinned"}
    shown = await get(http, "/ui/api/channels/general/messages?user=carol")
    last = shown["messages"][-1]
    assert last["reactions"] == [{"name": "dart", "users": ["U0ALICE"], "count": 1}]
    assert last["pinned"] is True
    assert [p["ts"] for p in shown["pins"]] == [msg.ts]
    assert shown["channel"]["pin_count"] == 1
    assert await post(http, "/ui/api/reactions", {**react, "add": False}) == {"ok": True}
    assert await post(http, "/ui/api/pins", {**pin, "add": False}) == {"ok": True}
    assert msg.reactions == []
    assert slack.pinned("#general") == []


async def test_threads_show_the_parent_replies_and_the_users_ephemerals(
    slack: LocalSlack, client: AsyncWebClient, http: aiohttp.ClientSession
) -> None:
    parent = (await slack.post("alice", "#general", "parent")).message
    assert parent is not None
    reply = await post(
        http,
        "/ui/api/message",
        {"user": "bob", "channel": "general", "text": "reply", "thread_ts": parent.ts},
    )
    await client.chat_postEphemeral(channel="C0GENERAL", user="U0BOB", text="only bob", thread_ts=parent.ts)
    bob = await get(http, f"/ui/api/channels/general/thread/{reply['ts']}?user=bob")
    assert bob["parent"]["ts"] == parent.ts
    assert bob["parent"]["reply_count"] == 1
    assert bob["parent"]["reply_users"] == ["U0BOB"]
    assert [(m["text"], m["ephemeral"]) for m in bob["replies"]] == [("reply", False), ("only bob", True)]
    alice = await get(http, f"/ui/api/channels/general/thread/{parent.ts}?user=alice")
    assert [m["text"] for m in alice["replies"]] == ["reply"]
    top = await get(http, "/ui/api/channels/general/messages?user=alice")
    assert texts(top) == ["parent"]


async def test_file_previews_render_markdown_and_escape_raw_html(
    slack: LocalSlack, client: AsyncWebClient, http: aiohttp.ClientSession
) -> None:
    markdown = "# Postmortem\n\n**Impact**: checkout down\n\n<script>alert(1)</script>\n\n![x](https://x.invalid/a.png)\n"
    await client.files_upload_v2(
        channel="C0GENERAL", filename="review.md", title="Review draft", content=markdown
    )
    await client.files_upload_v2(channel="C0GENERAL", filename="notes.txt", content="<b>raw</b>")
    await client.files_upload_v2(channel="C0GENERAL", filename="graph.png", content=b"\x89PNG")
    shown = await get(http, "/ui/api/channels/general/messages?user=alice")
    files = {f["name"]: f for m in shown["messages"] for f in m["files"]}
    review = files["review.md"]
    assert (review["title"], review["filetype"]) == ("Review draft", "md")
    html = review["preview_html"]
    assert "<h1>Postmortem</h1>" in html
    assert "<strong>Impact</strong>" in html
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html
    assert files["notes.txt"]["preview_html"] == "<pre>&lt;b&gt;raw&lt;/b&gt;</pre>"
    assert files["graph.png"]["preview_html"] is None
    async with http.get(review["url"]) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Disposition"].startswith("attachment")
        assert await resp.text() == markdown


async def test_bad_bodies_are_answered_with_400(http: aiohttp.ClientSession) -> None:
    async with http.post(
        "/ui/api/message", data="{not json", headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 400
        assert await resp.json() == {"ok": False, "error": "invalid_json"}
    missing = await post(http, "/ui/api/message", {"user": "alice", "channel": "general"}, status=400)
    assert missing["error"] == "invalid_arguments"
    assert "text" in missing["detail"]
    assert (await post(http, "/ui/api/message", ["alice"], status=400))["error"] == "invalid_arguments"
    unaddressed = {"user": "alice", "container": {"type": "message", "channel": "general"}, "action_id": "a"}
    assert "ts" in (await post(http, "/ui/api/click", unaddressed, status=400))["detail"]
    extra = await post(
        http, "/ui/api/pins", {"user": "alice", "channel": "general", "ts": "1.0", "sneaky": 1}, status=400
    )
    assert extra["error"] == "invalid_arguments"
    wrong_type = await post(
        http, "/ui/api/reactions", {"user": 7, "channel": "c", "ts": "1", "name": "x"}, 400
    )
    assert wrong_type["error"] == "invalid_arguments"


async def test_submitting_values_the_view_does_not_have_is_a_400(
    slack: LocalSlack, make_bolt: Callable[..., AsyncApp], http: aiohttp.ClientSession
) -> None:
    app = make_bolt()
    install(app, {})
    async with serve_bolt(app) as url:
        slack.request_url = url
        await slack.slash("alice", "#incident-response", "/incident x")
        view = await slack.wait_for(lambda: slack.current_view("alice"))
    path = f"/ui/api/views/{view.id}/submit"
    unknown = await post(http, path, {"user": "alice", "values": {"nope": {"nope": "x"}}}, status=400)
    assert unknown["error"] == "invalid_values"
    bad_option = {"title": {"title": "db down"}, "severity": {"severity": "p9"}}
    assert (await post(http, path, {"user": "alice", "values": bad_option}, 400))["error"] == "invalid_values"
    assert (await post(http, path, {"user": "bob", "values": {}}, 404))["error"] == "view_not_found"


async def test_unknown_things_are_404_json(slack: LocalSlack, http: aiohttp.ClientSession) -> None:
    assert await get(http, "/ui/api/channels/CNOPE/messages?user=alice", 404) == {
        "ok": False,
        "error": "channel_not_found",
    }
    assert (await get(http, "/ui/api/channels/general/thread/1.000001?user=alice", 404))["error"] == (
        "message_not_found"
    )
    nowhere = {"user": "alice", "channel": "CNOPE", "text": "hi"}
    assert (await post(http, "/ui/api/message", nowhere, 404))["error"] == "channel_not_found"
    nobody = {"user": "mallory", "channel": "general", "text": "hi"}
    assert (await post(http, "/ui/api/message", nobody, 404))["error"] == "user_not_found"
    assert (await get(http, "/ui/api/nothing-here", 404))["error"] == "unknown_endpoint"
    assert (await post(http, "/ui/api/views/VNOPE/submit", {"user": "alice"}, 404))["error"] == (
        "view_not_found"
    )


async def test_stopping_the_emulator_ends_open_event_streams() -> None:
    slack = LocalSlack(timing=FAST)
    await slack.start()
    stopped = False
    try:
        async with aiohttp.ClientSession(base_url=slack.url) as http, events(http) as stream:
            await stream.next("change")
            started = time.monotonic()
            await asyncio.wait_for(slack.stop(), 10)
            stopped = True
            assert time.monotonic() - started < 5
            with pytest.raises((EOFError, aiohttp.ClientPayloadError)):
                await stream.next("change")
    finally:
        if not stopped:
            await slack.stop()


async def test_a_public_channel_can_be_read_then_joined_and_a_private_one_neither(
    slack: LocalSlack, http: aiohttp.ClientSession
) -> None:
    public = slack.state.create_channel("inc-20261122-db-down", "U0ALICE")
    private = slack.state.create_channel("secret-plans", "U0ALICE", is_private=True)
    seen = await get(http, f"/ui/api/channels/{public.id}/messages?user=bob")
    assert seen["channel"]["is_member"] is False
    boot = await get(http, "/ui/api/bootstrap?user=bob")
    assert public.id not in [c["id"] for c in boot["channels"]]

    await post(http, "/ui/api/join", {"user": "bob", "channel": public.id})
    assert "U0BOB" in public.members
    boot = await get(http, "/ui/api/bootstrap?user=bob")
    assert public.id in [c["id"] for c in boot["channels"]]

    refused = await post(http, "/ui/api/join", {"user": "bob", "channel": private.id}, status=404)
    assert refused["ok"] is False
    assert "U0BOB" not in private.members

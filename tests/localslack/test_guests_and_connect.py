"""Guests and Slack Connect outsiders: what Slack reports about them and sends the app when they act."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from localslack import ChannelSeed, DriverError, LocalSlack, TeamSeed, UserSeed, WorkspaceSeed

from .conftest import FAST, serve_bolt, serve_handler

OURS = "T0OPSBOT"
PARTNER = "T0PARTNER"
PARTNER_CO = TeamSeed(id=PARTNER, name="Partner Co", domain="partner-co")
GINA = UserSeed(id="U0GINA", name="gina", real_name="Gina G", is_restricted=True, is_ultra_restricted=True)
MONA = UserSeed(id="U0MONA", name="mona", real_name="Mona M", is_restricted=True)
EVE = UserSeed(id="U0EVE", name="eve", real_name="Eve E", team_id=PARTNER)
SAM = UserSeed(id="U0SAM", name="sam", real_name="Sam S", team_id=PARTNER)
SHARED = ChannelSeed(
    id="C0PARTNER",
    name="partner-acme",
    members=["alice", "eve", "bot"],
    is_ext_shared=True,
    connected_team_ids=[PARTNER],
)
SEED = WorkspaceSeed().extended(
    external_teams=[PARTNER_CO],
    users=[GINA, MONA, EVE, SAM],
    channels=[SHARED, ChannelSeed(id="C0LOBBY", name="lobby", members=["mona", "alice"])],
    add_members={"#incident-response": ["gina", "mona"]},
)
BUTTON = [
    {
        "type": "actions",
        "block_id": "b",
        "elements": [{"type": "button", "action_id": "go", "text": {"type": "plain_text", "text": "Go"}}],
    }
]


@pytest.fixture
async def slack() -> AsyncIterator[LocalSlack]:
    async with LocalSlack.running(SEED, timing=FAST) as s:
        yield s


class Recording:
    """A bare app endpoint that keeps what Slack sent it, decoded."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        raw = (await request.read()).decode()
        if request.content_type == "application/json":
            self.bodies.append(json.loads(raw))
        else:
            form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
            self.bodies.append(json.loads(form["payload"]) if "payload" in form else form)
        return web.Response(status=200)


async def _error(call: Any) -> str:
    with pytest.raises(SlackApiError) as info:
        await call
    return str(info.value.response["error"])


async def test_users_info_tells_members_guests_and_outsiders_apart(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    async def info(user: str) -> dict[str, Any]:
        answer: dict[str, Any] = (await client.users_info(user=user))["user"]
        return answer

    alice, gina, mona, eve, sam = [await info(u) for u in ("U0ALICE", "U0GINA", "U0MONA", "U0EVE", "U0SAM")]
    flags = ("is_restricted", "is_ultra_restricted", "team_id")
    assert [tuple(u[f] for f in flags) for u in (alice, gina, mona, eve)] == [
        (False, False, OURS),
        (True, True, OURS),
        (True, False, OURS),
        (False, False, PARTNER),
    ]
    assert eve["profile"]["team"] == PARTNER
    # eve shares #partner-acme with the bot; sam from the same org shares nothing with it.
    assert "is_stranger" not in eve and "is_stranger" not in alice
    assert sam["is_stranger"] is True
    listed = {m["id"] for m in (await client.users_list())["members"]}
    assert {"U0ALICE", "U0GINA", "U0MONA"} <= listed
    assert not {"U0EVE", "U0SAM"} & listed
    profile = (await client.users_profile_get(user="U0EVE"))["profile"]
    assert (profile["team"], profile["real_name"]) == (PARTNER, "Eve E")
    assert await _error(client.users_profile_get(user="U404")) == "user_not_found"


async def test_conversations_info_and_list_tell_a_shared_channel_from_a_normal_one(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    shared = (await client.conversations_info(channel="C0PARTNER"))["channel"]
    assert {k: shared[k] for k in ("is_shared", "is_ext_shared", "is_pending_ext_shared")} == {
        "is_shared": True,
        "is_ext_shared": True,
        "is_pending_ext_shared": False,
    }
    assert shared["shared_team_ids"] == shared["connected_team_ids"] == [OURS, PARTNER]
    assert (shared["conversation_host_id"], shared["context_team_id"]) == (OURS, OURS)
    general = (await client.conversations_info(channel="C0GENERAL"))["channel"]
    assert (general["is_shared"], general["is_ext_shared"], general["shared_team_ids"]) == (
        False,
        False,
        [OURS],
    )
    assert "connected_team_ids" not in general
    listed = {c["name"]: c["is_ext_shared"] for c in (await client.conversations_list())["channels"]}
    assert listed["partner-acme"] is True
    assert listed["general"] is False
    slack.extend(
        channels=[
            ChannelSeed(
                id="C0THEIRS",
                name="theirs",
                members=["eve", "bot"],
                is_ext_shared=True,
                connected_team_ids=[PARTNER],
                host_team_id=PARTNER,
            )
        ]
    )
    theirs = (await client.conversations_info(channel="C0THEIRS"))["channel"]
    assert (theirs["conversation_host_id"], theirs["context_team_id"]) == (PARTNER, OURS)


async def test_commands_and_clicks_name_the_users_own_team(slack: LocalSlack, client: AsyncWebClient) -> None:
    app = Recording()
    ts = (await client.chat_postMessage(channel="C0PARTNER", text="go?", blocks=BUTTON))["ts"]
    async with serve_handler(app.handle) as url:
        slack.request_url = url
        await slack.slash("eve", "#partner-acme", "/incident declare p0 db")
        await slack.slash("alice", "#partner-acme", "/incident status")
        await slack.slash("gina", "#incident-response", "/incident status")
        await slack.click("eve", slack.message("#partner-acme", ts), "go")
        await slack.click("alice", slack.message("#partner-acme", ts), "go")
    eve_cmd, alice_cmd, gina_cmd, eve_click, alice_click = app.bodies
    assert (eve_cmd["user_id"], eve_cmd["team_id"], eve_cmd["team_domain"]) == (
        "U0EVE",
        PARTNER,
        "partner-co",
    )
    assert eve_cmd["is_enterprise_install"] == "false"
    assert (alice_cmd["team_id"], gina_cmd["team_id"], gina_cmd["user_id"]) == (OURS, OURS, "U0GINA")
    assert eve_click["user"]["team_id"] == PARTNER
    assert alice_click["user"]["team_id"] == OURS
    for click in (eve_click, alice_click):
        assert click["team"]["id"] == OURS
        assert click["is_enterprise_install"] is False


async def test_a_view_submitted_by_an_outsider_names_their_team(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    view = {
        "type": "modal",
        "callback_id": "ask",
        "title": {"type": "plain_text", "text": "Ask"},
        "submit": {"type": "plain_text", "text": "Send"},
        "blocks": [
            {
                "type": "input",
                "block_id": "q",
                "label": {"type": "plain_text", "text": "Question"},
                "element": {"type": "plain_text_input", "action_id": "q"},
            }
        ],
    }
    opened = await client.views_open(trigger_id=slack.new_trigger_id("eve"), view=view)
    app = Recording()
    async with serve_handler(app.handle) as url:
        slack.request_url = url
        await slack.submit_view("eve", opened["view"]["id"], {"q": "why?"})
    (submission,) = app.bodies
    assert submission["type"] == "view_submission"
    assert submission["user"]["team_id"] == PARTNER
    assert submission["team"]["id"] == OURS
    assert submission["view"]["app_installed_team_id"] == OURS


async def test_events_in_a_shared_channel_carry_the_connect_fields(slack: LocalSlack) -> None:
    app = Recording()
    async with serve_handler(app.handle) as url:
        slack.request_url = url
        by_eve = await slack.post("eve", "#partner-acme", f"hi <@{slack.bot_user_id}>")
        await slack.post("alice", "#partner-acme", "welcome")
        await slack.post("alice", "#general", "internal")
        await slack.react("eve", by_eve.message or pytest.fail("no message"), "wave")
    eve_msg, eve_mention, alice_shared, alice_general, eve_reaction = app.bodies
    for envelope in (eve_msg, eve_mention):
        assert envelope["is_ext_shared_channel"] is True
        # The outer team is where the event came from; the installation is in authorizations.
        assert envelope["team_id"] == PARTNER
        assert envelope["authorizations"][0]["team_id"] == OURS
        assert envelope["context_team_id"] == OURS
        event = envelope["event"]
        assert (event["team"], event["user_team"], event["source_team"]) == (PARTNER,) * 3
    assert eve_mention["event"]["type"] == "app_mention"
    assert alice_shared["is_ext_shared_channel"] is True
    assert alice_shared["team_id"] == OURS
    assert (alice_shared["event"]["user_team"], alice_shared["event"]["source_team"]) == (OURS, OURS)
    assert alice_general["is_ext_shared_channel"] is False
    assert "user_team" not in alice_general["event"]
    assert "context_team_id" not in alice_general
    assert eve_reaction["event"]["type"] == "reaction_added"
    assert eve_reaction["is_ext_shared_channel"] is True
    history = slack.messages("#partner-acme")
    assert [m.team for m in history] == [PARTNER, OURS]


async def test_guests_and_outsiders_act_only_where_they_are_members(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    for who in ("gina", "mona", "eve"):
        with pytest.raises(DriverError, match="cannot join"):
            await slack.join(who, "#general")
        assert slack.user(who).id not in slack.channel("#general").members
    with pytest.raises(DriverError, match="not in #general"):
        await slack.slash("gina", "#general", "/incident status")
    with pytest.raises(DriverError, match="not in #general"):
        await slack.post("mona", "#general", "hello")
    posted = await client.chat_postMessage(channel="C0GENERAL", text="go?", blocks=BUTTON)
    internal = slack.message("#general", posted["ts"])
    for who in ("gina", "eve"):
        with pytest.raises(DriverError, match="cannot see #general"):
            await slack.react(who, internal, "eyes")
        with pytest.raises(DriverError, match="cannot see #general"):
            await slack.click(who, internal, "go")
    assert internal.reactions == []
    await slack.react("dave", internal, "eyes")
    await slack.join("dave", "#partner-acme")
    assert "U0DAVE" in slack.channel("#partner-acme").members
    assert await _error(client.conversations_invite(channel="C0GENERAL", users="U0GINA")) == (
        "ura_max_channels"
    )
    assert await _error(client.conversations_invite(channel="C0GENERAL", users="U0EVE")) == "cant_invite"
    await client.conversations_invite(channel="C0GENERAL", users="U0MONA")
    assert "U0MONA" in slack.channel("#general").members


async def test_the_web_client_shows_a_guest_only_their_channels(slack: LocalSlack) -> None:
    async with aiohttp.ClientSession(base_url=slack.url) as http:
        async with http.get("/ui/api/bootstrap?user=gina") as resp:
            gina = await resp.json()
        async with http.get("/ui/api/bootstrap?user=dave") as resp:
            dave = await resp.json()
        async with http.get("/ui/api/channels/C0GENERAL/messages?user=gina") as resp:
            assert resp.status == 404
        async with http.post("/ui/api/join", json={"user": "eve", "channel": "C0GENERAL"}) as resp:
            assert resp.status == 404
    assert [c["name"] for c in gina["all_channels"]] == ["incident-response"]
    # A full member can browse the shared channel they are not in yet; a guest cannot.
    assert "partner-acme" in [c["name"] for c in dave["all_channels"]]


def test_seed_rules_for_guests_and_outsiders() -> None:
    base = WorkspaceSeed(external_teams=[PARTNER_CO])
    with pytest.raises(ValidationError, match="also is_restricted"):
        UserSeed(id="U1", name="x", real_name="X", is_ultra_restricted=True)
    with pytest.raises(ValidationError, match="is_ext_shared needs"):
        ChannelSeed(id="C1", name="x", is_ext_shared=True)
    with pytest.raises(ValueError, match="unknown team"):
        base.extended(users=[UserSeed(id="U1", name="x", real_name="X", team_id="T0NOBODY")])
    with pytest.raises(ValueError, match="not shared with their team"):
        base.extended(users=[EVE], add_members={"#general": ["eve"]})
    with pytest.raises(ValueError, match="more than one channel"):
        base.extended(users=[GINA], add_members={"#general": ["gina"], "#incident-response": ["gina"]})
    with pytest.raises(ValueError, match="unknown teams"):
        WorkspaceSeed().extended(channels=[SHARED.model_copy(update={"members": ["alice"]})])
    with pytest.raises(ValueError, match="used twice"):
        base.extended(users=[GINA, GINA])


async def test_extending_a_running_workspace(slack: LocalSlack, client: AsyncWebClient) -> None:
    kim = UserSeed(id="U0KIM", name="kim", real_name="Kim K", is_restricted=True)
    with pytest.raises(ValueError, match="not shared with their team"):
        slack.extend(
            users=[UserSeed(id="U0ZED", name="zed", real_name="Z", team_id=PARTNER)],
            add_members={"#general": ["zed"]},
        )
    assert "U0ZED" not in slack.state.users
    slack.extend(users=[kim], add_members={"#general": ["kim"]})
    assert (await client.users_info(user="U0KIM"))["user"]["is_restricted"] is True
    assert "U0KIM" in slack.channel("#general").members
    await slack.post("kim", "#general", "hello from a guest")
    # Later additions are checked against everything added before them.
    slack.extend(channels=[ChannelSeed(id="C0KIM", name="kim-corner", members=["kim", "bot"])])
    assert slack.channel("#kim-corner").members == ["U0KIM", slack.bot_user_id]


def test_the_demo_workspace_has_a_guest_an_outsider_and_a_shared_channel() -> None:
    from bot.demo.workspace import demo_seed

    slack = LocalSlack(demo_seed())
    gina, eve = slack.user("gina"), slack.user("eve")
    assert (gina.is_restricted, gina.is_ultra_restricted, gina.team_id) == (True, True, OURS)
    assert eve.team_id == PARTNER and not eve.is_guest
    assert [c.name for c in slack.state.channels.values() if gina.id in c.members] == ["incident-response"]
    partner = slack.channel("#partner-acme")
    assert partner.is_ext_shared and partner.connected_team_ids == [PARTNER]
    assert {eve.id, slack.bot_user_id, slack.user("alice").id} <= set(partner.members)


async def test_bolt_hears_an_outsider_and_can_tell_the_teams_apart(
    slack: LocalSlack, make_bolt: Callable[..., AsyncApp]
) -> None:
    heard: dict[str, Any] = {}
    app = make_bolt()

    @app.command("/incident")
    async def command(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        heard["command"] = (body["team_id"], context.team_id)
        await ack("Not for Partner Co" if body["team_id"] != OURS else "ok")

    @app.event("message")
    async def message(event: dict[str, Any], context: AsyncBoltContext) -> None:
        heard["message"] = (event["user_team"], context.team_id)

    async with serve_bolt(app) as url:
        slack.request_url = url
        d = await slack.slash("eve", "#partner-acme", "/incident declare p0 db")
        assert d.ack == {"text": "Not for Partner Co"}
        await slack.post("eve", "#partner-acme", "hello")
        await slack.wait_for(lambda: heard.get("message"))
    assert heard["command"] == (PARTNER, PARTNER)
    # bolt takes an event's installation from `authorizations`, so its context is our team.
    assert heard["message"] == (PARTNER, OURS)

"""An unmodified slack_bolt AsyncApp driven by LocalSlack, over signed HTTP and over Socket Mode."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from localslack import LocalSlack, Message

from .conftest import serve_bolt
from .incident_app import install


@asynccontextmanager
async def connected(slack: LocalSlack, app: AsyncApp, mode: str) -> AsyncIterator[None]:
    if mode == "http":
        async with serve_bolt(app) as url:
            slack.request_url = url
            yield
        return
    slack.use_socket_mode()
    handler = AsyncSocketModeHandler(app, slack.app_token)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        await slack.wait_for_socket()
        yield
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("mode", ["http", "socket"])
async def test_incident_flow(slack: LocalSlack, make_bolt: Callable[..., AsyncApp], mode: str) -> None:
    seen: dict[str, Any] = {}
    app = make_bolt()
    install(app, seen)
    async with connected(slack, app, mode):
        # Slash command: the ack text becomes alice's ephemeral, respond() posts in channel, a modal opens.
        d = await slack.slash("alice", "#incident-response", "/incident declare p0 db down")
        assert d.ok
        assert d.transport == mode
        assert d.ack == {"text": "Declaring: declare p0 db down"}
        assert [e.text for e in slack.ephemerals("alice", "#incident-response")] == [
            "Declaring: declare p0 db down"
        ]
        assert seen["command"]["user_id"] == "U0ALICE"
        assert seen["command"]["channel_name"] == "incident-response"
        card = await slack.wait_for(lambda: slack.last_message("#incident-response"))
        assert card.text == "Incident declared"
        assert card.bot_id == slack.bot_id
        view = await slack.wait_for(lambda: slack.current_view("alice"))
        assert view.callback_id == "declare"

        # Button click: respond(replace_original) rewrites the card, say() answers in its thread.
        click = await slack.click("bob", card, "ack_incident")
        assert click.ok
        await slack.wait_for(lambda: card.text == "Acknowledged by <@U0BOB>")
        reply: Message = await slack.wait_for(lambda: slack.last_reply("#incident-response", card.ts))
        assert reply.text == "On it"
        body = seen["action_body"]
        assert body["container"] == {
            "type": "message",
            "message_ts": card.ts,
            "channel_id": "C0INCIDENT",
            "is_ephemeral": False,
        }
        assert body["actions"][0]["value"] == "inc-1"
        assert body["actions"][0]["block_id"] == "incident_actions"

        # View submission: validation errors keep the modal open, a good submit closes it.
        bad = await slack.submit_view("alice", view, {"title": "db", "severity": "p0"})
        assert bad.view_errors == {"title": "Too vague"}
        assert slack.current_view("alice") is view
        good = await slack.submit_view("alice", view, {"title": "db down", "severity": "p0"})
        assert good.ok
        assert good.view_errors is None
        assert slack.current_view("alice") is None
        declared = await slack.wait_for(
            lambda: [m for m in slack.messages("#incident-response") if m.text == "p0: db down"]
        )
        assert declared

        # reaction_added event: stored reaction plus the app's say() in the same channel.
        ev = await slack.react("carol", declared[0], "eyes")
        assert ev.ok
        assert ev.event_id
        assert ev.event_id.startswith("Ev")
        assert declared[0].reactions[0].users == ["U0CAROL"]
        await slack.wait_for(lambda: slack.last_message("#incident-response").text == "saw :eyes:")  # type: ignore[union-attr]


async def test_bolt_rejects_bad_signature_and_stale_timestamp(
    slack: LocalSlack, make_bolt: Callable[..., AsyncApp]
) -> None:
    seen: dict[str, Any] = {}
    app = make_bolt()
    install(app, seen)
    async with connected(slack, app, "http"):
        bad = await slack.slash("alice", "#general", "/incident x", tamper="bad_signature")
        assert bad.status == 401
        assert bad.json() == {"error": "invalid request"}
        assert bad.user_error == "dispatch_failed"
        stale = await slack.slash("alice", "#general", "/incident x", tamper="stale_timestamp")
        assert stale.status == 401
        assert slack.ephemerals("alice") == []

        # Bolt has no replay protection beyond the 5-minute window: the byte-identical request is accepted.
        good = await slack.slash("alice", "#general", "/ping replay me")
        assert good.status == 200
        replayed = await slack.replay_last()
        assert replayed.status == 200
        assert replayed.body == "pong"
        assert replayed.attempts[0].headers == good.attempts[0].headers
        assert seen["pings"] == ["replay me", "replay me"]


async def test_slow_http_ack_causes_slack_style_retry(
    slack: LocalSlack, make_bolt: Callable[..., AsyncApp]
) -> None:
    seen: dict[str, Any] = {"slow_first_event": 1.5}
    app = make_bolt(process_before_response=True)
    install(app, seen)
    async with connected(slack, app, "http"):
        msg = slack.state.add_message(slack.channel("#general"), user="U0ALICE", text="x")
        d = await slack.react("bob", msg, "fire")
        assert d.status is None
        assert d.attempts[0].reason == "http_timeout"
        await slack.wait_for(lambda: d.ok, timeout=5)
        assert d.attempts[1].headers["X-Slack-Retry-Num"] == "1"
        assert d.attempts[1].headers["X-Slack-Retry-Reason"] == "http_timeout"
        assert seen["retry_nums"] == ["0", "1"]
        await slack.wait_for(lambda: slack.last_message("#general").text == "saw :fire:")  # type: ignore[union-attr]


async def test_unacked_socket_envelope_is_redelivered(
    slack: LocalSlack, make_bolt: Callable[..., AsyncApp]
) -> None:
    seen: dict[str, Any] = {"slow_first_event": 1.5}
    app = make_bolt(process_before_response=True)
    install(app, seen)
    async with connected(slack, app, "socket"):
        msg = slack.state.add_message(slack.channel("#general"), user="U0ALICE", text="x")
        d = await slack.react("bob", msg, "fire")
        assert d.status is None
        await slack.wait_for(lambda: d.ok, timeout=5)
        assert [a.retry_num for a in d.attempts] == [0, 1]
        assert seen["retry_nums"] == ["0", "1"]


async def test_socket_disconnect_makes_the_client_reconnect(
    slack: LocalSlack, make_bolt: Callable[..., AsyncApp]
) -> None:
    app = make_bolt()
    seen: dict[str, Any] = {}
    install(app, seen)
    async with connected(slack, app, "socket"):
        await slack.disconnect_sockets()
        await slack.wait_for(lambda: len(slack.calls("apps.connections.open")) == 2)
        # Tier 1 tolerates this small burst: a Slack-requested refresh is not refused.
        assert [c.status for c in slack.calls("apps.connections.open")] == [200, 200]
        await slack.wait_for_socket()
        d = await slack.slash("alice", "#general", "/incident after reconnect")
        assert d.ok
        assert d.ack == {"text": "Declaring: after reconnect"}

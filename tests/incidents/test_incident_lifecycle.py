"""Incidents end to end through localslack: declare, roles, updates, timeline, resolve, bad input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from bot.server import BotServer
from localslack import LocalSlack, Message


def text_of(blocks: object) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def incident_channel(slack: LocalSlack) -> str | None:
    created = [c for c in slack.calls("conversations.create") if c.ok]
    return str(created[-1].args["name"]) if created else None


async def declare(slack: LocalSlack, text: str = "/incident declare p0 checkout is down") -> str:
    before = len([c for c in slack.calls("conversations.create") if c.ok])
    await slack.slash("alice", "incident-response", text)
    await slack.wait_for(
        lambda: len([c for c in slack.calls("conversations.create") if c.ok]) > before, timeout=10
    )
    name = incident_channel(slack)
    assert name is not None
    await slack.wait_for(lambda: [m for m in slack.messages(name) if "INC-" in text_of(m.blocks)], timeout=10)
    return name


def card(slack: LocalSlack, channel: str) -> Message:
    """The incident card: the first message whose header names the incident."""
    return next(m for m in slack.messages(channel) if m.blocks and "· INC-" in text_of(m.blocks[:1]))


async def timeline(database_url: str) -> list[tuple[str, str, str | None]]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (
            await conn.execute("SELECT kind, text, actor FROM timeline_events ORDER BY at, id")
        ).fetchall()
    return [(str(k), str(t), a) for k, t, a in rows]


async def test_declare_p0_opens_channel_topic_card_announcement_and_diagnosis(
    slack: LocalSlack, incident_bot: BotServer, database_url: str
) -> None:
    name = await declare(slack)
    today = datetime.now(UTC).strftime("%Y%m%d")
    assert name == f"inc-{today}-checkout-is-down"
    channel = slack.channel(name)
    assert "U0ALICE" in channel.members
    topic = await slack.wait_for(lambda: slack.channel(name).topic["value"], timeout=10)
    assert topic.startswith("P0 · investigating · IC <@U0ALICE>")
    first = text_of(card(slack, name).blocks)
    assert "🔴 P0 · INC-" in first and "Run diagnosis" in first and "Resolve" in first
    announcement = await slack.wait_for(
        lambda: [m for m in slack.messages("incident-response") if "INCIDENT DECLARED" in m.text], timeout=10
    )
    assert f"<#{channel.id}>" in announcement[-1].text
    diagnosis = await slack.wait_for(
        lambda: [
            m for m in slack.messages(name) if "P0 checklist" in text_of(m.blocks[:1] if m.blocks else [])
        ],
        timeout=15,
    )
    assert diagnosis
    assert "declared" in [kind for kind, _, _ in await timeline(database_url)]


async def test_a_taken_channel_name_gets_a_numeric_suffix(slack: LocalSlack, incident_bot: BotServer) -> None:
    first = await declare(slack)
    second = await declare(slack)
    assert second == f"{first}-2"


async def test_roles_updates_severity_notes_and_resolve_are_on_the_card_topic_and_timeline(
    slack: LocalSlack, incident_bot: BotServer, database_url: str
) -> None:
    name = await declare(slack, "/incident declare p1 payments slow")
    await slack.slash("alice", name, "/incident role comms <@U0BOB|bob>")
    await slack.wait_for(lambda: "<@U0BOB>" in text_of(card(slack, name).blocks), timeout=10)
    await slack.slash("alice", name, "/incident severity p0")
    await slack.wait_for(lambda: slack.channel(name).topic["value"].startswith("P0"), timeout=10)
    await slack.slash("bob", name, "/incident update rolled back release 1.2.3, errors dropping")
    await slack.wait_for(
        lambda: [m for m in slack.messages("incident-response") if "rolled back" in m.text], timeout=10
    )
    await slack.slash("alice", name, "/incident note customers notified by support")
    await slack.slash("alice", name, "/incident root-cause connection pool leak in checkout worker")
    await slack.wait_for(
        lambda: [e for e in slack.ephemerals("alice", name) if "Root cause recorded" in e.text]
    )
    await slack.slash("alice", name, "/incident resolve pool fixed and verified")
    await slack.wait_for(lambda: "resolved" in slack.channel(name).topic["value"], timeout=10)
    await slack.wait_for(lambda: "✅ *Resolved*" in text_of(card(slack, name).blocks), timeout=10)
    final = text_of(card(slack, name).blocks)
    assert "✅ *Resolved* by <@U0ALICE>" in final
    assert "connection pool leak" in final
    assert "incident_resolve" not in final, "a resolved card has no buttons"
    entries = await timeline(database_url)
    texts = [t for _, t, _ in entries]
    assert any("<@U0BOB> is communications lead" in t for t in texts)
    assert "Severity P1 → P0" in texts
    assert "Update: rolled back release 1.2.3, errors dropping" in texts
    assert "Note: customers notified by support" in texts
    assert "Resolved: pool fixed and verified" in texts


async def test_resolve_without_a_root_cause_asks_for_it(slack: LocalSlack, incident_bot: BotServer) -> None:
    name = await declare(slack)
    await slack.slash("alice", name, "/incident resolve all good")
    view = await slack.wait_for(lambda: slack.current_view("alice"), timeout=5)
    await slack.submit_view(
        "alice", view, {"summary": "all good", "root_cause": "bad deploy of the checkout service"}
    )
    await slack.wait_for(
        lambda: "bad deploy of the checkout service" in text_of(card(slack, name).blocks), timeout=10
    )


async def test_pins_and_pushpin_reactions_add_and_remove_timeline_entries_once(
    slack: LocalSlack, incident_bot: BotServer, database_url: str
) -> None:
    name = await declare(slack)
    await slack.slash("alice", name, "/incident role scribe <@U0DAVE|dave>")
    await slack.wait_for(lambda: "U0DAVE" in slack.channel(name).members, timeout=10)
    said = await slack.post("dave", name, "saw the first 500s at 03:02 after deploy")
    assert said.message is not None
    await slack.react("alice", said.message, "pushpin")
    entries = await pinned_entries(database_url, until=lambda found: bool(found))
    assert entries == [("pinned", "saw the first 500s at 03:02 after deploy", "U0DAVE")]
    assert (await slack.replay_last()).ok
    assert len(await pinned_entries(database_url, until=lambda found: True)) == 1
    await slack.unreact("alice", said.message, "pushpin")
    assert await pinned_entries(database_url, until=lambda found: not found) == []
    await slack.pin("alice", said.message)
    assert len(await pinned_entries(database_url, until=lambda found: bool(found))) == 1
    await slack.unpin("alice", said.message)
    assert await pinned_entries(database_url, until=lambda found: not found) == []


async def pinned_entries(
    database_url: str, until: Callable[[list[Any]], bool]
) -> list[tuple[str, str, str | None]]:
    """The pinned timeline entries once `until` holds (events are handled asynchronously)."""
    found: list[tuple[str, str, str | None]] = []
    for _ in range(50):
        found = [e for e in await timeline(database_url) if e[0] == "pinned"]
        if until(found):
            return found
        await asyncio.sleep(0.1)
    return found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/incident declare p7 checkout is down", "not a severity"),
        ("/incident declare p0 " + "x" * 500, "keep it under 150"),
        ("/incident frobnicate", "don't know"),
        ("/incident role commander @nobody", "Usage"),
        ("/incident update", "needs some text"),
    ],
)
async def test_bad_input_answers_with_usage_and_changes_nothing(
    slack: LocalSlack, incident_bot: BotServer, text: str, expected: str
) -> None:
    await slack.slash("alice", "general", text)
    reply = await slack.wait_for(lambda: slack.ephemerals("alice", "general"))
    assert expected in reply[-1].text
    assert slack.calls("conversations.create") == []
    assert slack.messages("general") == []


async def test_incident_commands_outside_an_incident_channel_are_refused(
    slack: LocalSlack, incident_bot: BotServer
) -> None:
    await slack.slash("alice", "general", "/incident resolve done")
    reply = await slack.wait_for(
        lambda: [e for e in slack.ephemerals("alice", "general") if "incident channel" in e.text]
    )
    assert reply
    assert slack.calls("conversations.setTopic") == []


async def test_a_role_for_an_unknown_user_is_refused(slack: LocalSlack, incident_bot: BotServer) -> None:
    name = await declare(slack)
    await slack.slash("alice", name, "/incident role scribe <@U0NOBODY|ghost>")
    reply = await slack.wait_for(
        lambda: [e for e in slack.ephemerals("alice", name) if "don't know" in e.text]
    )
    assert reply
    assert "U0NOBODY" not in text_of(card(slack, name).blocks)


async def test_empty_declare_opens_the_form_and_the_form_declares(
    slack: LocalSlack, incident_bot: BotServer
) -> None:
    await slack.slash("alice", "incident-response", "/incident declare")
    view = await slack.wait_for(lambda: slack.current_view("alice"), timeout=5)
    await slack.submit_view("alice", view, {"severity": "p2", "title": "search is slow", "service": "search"})
    name = await slack.wait_for(lambda: incident_channel(slack), timeout=10)
    assert name.endswith("search-is-slow")
    await slack.wait_for(
        lambda: [m for m in slack.messages(name) if "Service:* search" in text_of(m.blocks)], timeout=10
    )

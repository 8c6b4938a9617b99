"""Diagnoses from Slack, end to end: localslack → bot → real PostgreSQL → card in the channel."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg
import pytest

from bot.server import BotServer
from localslack import LocalSlack, Message


def text_of(blocks: object) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def cards(slack: LocalSlack, channel: str = "incident-response") -> list[Message]:
    return [m for m in slack.messages(channel) if m.blocks and m.blocks[0].get("type") == "header"]


async def recorded_run(database_url: str, timeout: float = 5.0) -> tuple[Any, ...] | None:
    """The diagnosis run's row, waited for: it is written just after the card (it keeps the card's ts)."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while True:
            cur = await conn.execute(
                "SELECT runbook_id, overall, requested_by, message_ts, result->'checks' FROM diagnosis_runs"
            )
            row = await cur.fetchone()
            if row is not None or asyncio.get_running_loop().time() > deadline:
                return row
            await asyncio.sleep(0.05)


async def test_db_connections_posts_a_critical_card_with_counts_and_thresholds(
    slack: LocalSlack, diag_bot: BotServer, app_db_url: str, database_url: str
) -> None:
    idle = [await psycopg.AsyncConnection.connect(app_db_url) for _ in range(50)]
    try:
        delivery = await slack.slash("alice", "incident-response", "/db connections")
        assert delivery.ok
        ack = slack.ephemerals("alice", "incident-response")
        assert "Running *Database connections*" in ack[-1].text
        card = (await slack.wait_for(lambda: cards(slack), timeout=15))[-1]
    finally:
        for conn in idle:
            await conn.close()
    text = text_of(card.blocks)
    assert "Database connections — CRITICAL" in text
    assert "Idle connections holding pool slots" in text
    assert "critical if > 40 connections" in text
    assert "terminate_idle" in text, "the remediation is offered as a button"
    row = await recorded_run(database_url)
    assert row is not None, "the run is recorded right after its card is posted"
    assert row[:4] == ("db.connections", "crit", "U0ALICE", card.ts)
    idle_result = next(c for c in row[4] if c["check_id"] == "idle")
    assert idle_result["value"] >= 50


@pytest.mark.parametrize(
    "text",
    [
        "/db connections idle_minutes='; DROP TABLE guard; --",
        "/db connections idle_minutes=$(reboot)",
        "/db connections idle_minutes=99999999",
        "/db connections " + "x" * 3000,
        "/db connections idle_minutes=３０",
        "/runbook run db.connections idle_minutes=1;DROP",
        "/db frobnicate",
        "/runbook run no.such.runbook",
    ],
)
async def test_bad_or_hostile_input_gets_usage_and_runs_nothing(
    slack: LocalSlack, diag_bot: BotServer, app_db_url: str, text: str
) -> None:
    async with await psycopg.AsyncConnection.connect(app_db_url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE guard (id int)")
    command, _, rest = text.partition(" ")
    delivery = await slack.slash("alice", "general", f"{command} {rest}")
    assert delivery.ok
    reply = slack.ephemerals("alice", "general")[-1].text
    assert "Usage" in reply or "/runbook list" in reply or "/db connections" in reply
    assert "Traceback" not in reply
    assert slack.messages("general") == []
    assert slack.calls("chat.postMessage") == []
    async with await psycopg.AsyncConnection.connect(app_db_url) as conn:
        assert await (await conn.execute("SELECT count(*) FROM guard")).fetchone() == (0,)


async def test_runbook_list_and_show_describe_the_catalogue(slack: LocalSlack, diag_bot: BotServer) -> None:
    await slack.slash("bob", "general", "/runbook list")
    listing = text_of(slack.ephemerals("bob")[-1].blocks)
    assert "`db.connections`" in listing and "`test.rows`" in listing
    await slack.slash("bob", "general", "/runbook show db.connections")
    shown = text_of(slack.ephemerals("bob")[-1].blocks)
    assert "Terminate idle connections" in shown
    assert "Needs 1 approval" in shown
    assert "P1: High Error Rate" in shown


async def test_a_table_too_long_for_a_message_goes_whole_into_the_thread(
    slack: LocalSlack, diag_bot: BotServer
) -> None:
    await slack.slash("alice", "incident-response", "/db rows")
    card = (await slack.wait_for(lambda: cards(slack), timeout=15))[-1]
    text = text_of(card.blocks)
    assert "more rows — full output in the thread" in text
    files = await slack.wait_for(lambda: slack.files_in("incident-response"), timeout=10)
    content = slack.file_content(files[-1].id).decode()
    assert "300  " in content or "\n300" in content, "the last row is in the attached file"
    replies = slack.thread("incident-response", card.ts)
    assert any(m.files for m in replies), "the file is posted in the card's thread"


async def test_a_suggested_runbook_button_runs_it_in_the_thread(
    slack: LocalSlack, diag_bot: BotServer
) -> None:
    await slack.slash("carol", "incident-response", "/runbook run test.follow")
    card = (await slack.wait_for(lambda: cards(slack), timeout=15))[-1]
    button = next(e for b in card.blocks if b["type"] == "actions" for e in b["elements"])
    assert button["text"]["text"] == "▶ Run db.connections"
    await slack.click("dave", card, button["action_id"])
    follow_up = await slack.wait_for(
        lambda: [m for m in slack.thread("incident-response", card.ts) if m.ts != card.ts and m.blocks],
        timeout=15,
    )
    assert "Database connections" in text_of(follow_up[-1].blocks)
    assert "U0DAVE" in text_of(follow_up[-1].blocks)


async def test_an_offered_action_asks_for_a_reason_and_changes_nothing_yet(
    slack: LocalSlack, diag_bot: BotServer, app_db_url: str
) -> None:
    idle = [await psycopg.AsyncConnection.connect(app_db_url) for _ in range(45)]
    try:
        await slack.slash("alice", "incident-response", "/db connections idle_minutes=0")
        card = (await slack.wait_for(lambda: cards(slack), timeout=15))[-1]
        button = next(
            e
            for b in card.blocks
            if b["type"] == "actions"
            for e in b["elements"]
            if "request_action" in e["action_id"]
        )
        assert button["style"] == "danger"
        await slack.click("alice", card, button["action_id"])
        view = await slack.wait_for(lambda: slack.current_view("alice"), timeout=5)
        assert "Why is this needed?" in text_of(view.blocks)
        assert "Terminate idle connections" in text_of(view.blocks)
        assert all(not conn.closed for conn in idle)
        async with await psycopg.AsyncConnection.connect(app_db_url) as conn:
            query = "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle'"
            row = await (await conn.execute(query)).fetchone()
        assert row is not None
        assert row[0] >= 45
    finally:
        for conn in idle:
            await conn.close()

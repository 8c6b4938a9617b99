"""The two-person rule end to end: localslack → bot → real PostgreSQL as both store and target."""

from __future__ import annotations

import asyncio
import copy
import re
from pathlib import Path

import psycopg

from bot import audit
from bot.server import BotServer
from localslack import LocalSlack
from tests.approvals.helpers import button, card_state, request_action, text_of
from tests.conftest import running_bot


async def idle_count(app_db_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(app_db_url) as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle'"
                " AND application_name NOT LIKE 'opsbot%'"
            )
        ).fetchone()
    assert row is not None
    return int(row[0])


async def audit_actions(database_url: str) -> list[tuple[str, str, str]]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        report = await audit.verify(conn)
        assert report.ok, report
        rows = await (
            await conn.execute("SELECT actor, action, outcome FROM audit_events ORDER BY id")
        ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


async def executions(app_db_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(app_db_url) as conn:
        row = await (await conn.execute("SELECT count(*) FROM executions")).fetchone()
    assert row is not None
    return int(row[0])


async def test_alice_requests_bob_approves_and_the_idle_connections_are_gone(
    slack: LocalSlack, approvals_bot: BotServer, app_db_url: str, database_url: str
) -> None:
    idle = [await psycopg.AsyncConnection.connect(app_db_url) for _ in range(40)]
    try:
        card = await request_action(slack, "alice", "/db connections idle_minutes=0")
        text = text_of(card.blocks)
        assert "Terminate idle connections" in text
        assert "Would affect 40 rows" in text
        assert "pool exhausted, P1" in text
        receipt = await slack.wait_for(
            lambda: [e for e in slack.ephemerals("alice") if "Requested REQ-" in e.text]
        )
        assert "approval" in receipt[-1].text
        # The receipt follows the card's redraw, if any: a card nobody acted on yet is posted once
        # (chat.update's tier-3 budget is what keeps alert cards current in a storm).
        assert not [c for c in slack.calls("chat.update") if c.args.get("ts") == card.ts]

        await slack.click("alice", card, button(card, "approval_approve"))
        refusal = await slack.wait_for(
            lambda: [e for e in slack.ephemerals("alice") if "own request" in e.text]
        )
        assert "second person" in refusal[-1].text
        assert await idle_count(app_db_url) >= 40

        await slack.click("bob", card, button(card, "approval_approve"))
        done = await card_state(slack, card, "✅ Done")
        assert "approved by <@U0BOB>" in text_of(done.blocks)
        assert await idle_count(app_db_url) == 0
        thread = await slack.wait_for(
            lambda: len(slack.thread("incident-response", card.ts)) >= 2, timeout=10
        )
        replies = " ".join(m.text for m in slack.thread("incident-response", card.ts))
        assert thread
        assert "succeeded" in replies and "terminated=40" in replies
        # The count just after may still see this test's own checking connection on its way out.
        assert re.search(r"Idle connections holding pool slots\*: 40 → [01] ", replies), replies
    finally:
        for conn in idle:
            await conn.close()
    actions = await audit_actions(database_url)
    assert ("U0ALICE", "approval.requested", "pending") in actions
    assert ("U0ALICE", "approval.refused", "own_request") in actions
    assert ("U0BOB", "approval.approved", "approved") in actions
    assert ("opsbot", "approval.succeeded", "succeeded") in actions


async def test_refusals_change_nothing_and_are_audited(
    slack: LocalSlack, approvals_bot: BotServer, app_db_url: str, database_url: str
) -> None:
    # Not an approver.
    card = await request_action(slack, "alice", "/test counter")
    stale = copy.deepcopy(card)  # what a client that has not redrawn the card still shows
    await slack.click("dave", card, button(card, "approval_approve"))
    await slack.wait_for(lambda: [e for e in slack.ephemerals("dave") if "approver group" in e.text])
    # Tampered buttons: an unknown request id, and a request from another channel.
    forged = copy.deepcopy(card)
    for block in forged.blocks or []:
        for element in block.get("elements", []):
            if element.get("action_id") == "approval_approve":
                element["value"] = "REQ-9999"
    await slack.click("bob", forged, "approval_approve")
    await slack.wait_for(lambda: [e for e in slack.ephemerals("bob") if "no such approval request" in e.text])
    # Denied, then a late approval.
    await slack.click("carol", card, button(card, "approval_deny"))
    await card_state(slack, card, "🚫 Denied")
    await slack.click("bob", stale, button(stale, "approval_approve"))
    await slack.wait_for(lambda: [e for e in slack.ephemerals("bob") if "already denied" in e.text])

    # Cancelled by the requester, then an approval.
    second = await request_action(slack, "alice", "/test counter")
    stale_second = copy.deepcopy(second)
    await slack.click("bob", second, button(second, "approval_cancel"))
    await slack.wait_for(
        lambda: [e for e in slack.ephemerals("bob") if "Only the person who asked" in e.text]
    )
    await slack.click("alice", second, button(second, "approval_cancel"))
    await card_state(slack, second, "Cancelled by the requester")
    await slack.click("bob", stale_second, button(stale_second, "approval_approve"))
    await slack.wait_for(lambda: [e for e in slack.ephemerals("bob") if "already cancelled" in e.text])

    # Expired: its time has passed, the compare-and-set refuses it even before the sweep.
    third = await request_action(slack, "alice", "/test counter")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE approval_requests SET expires_at = now() - interval '1 second' WHERE state = 'pending'"
        )
    await slack.click("bob", third, button(third, "approval_approve"))
    await slack.wait_for(lambda: [e for e in slack.ephemerals("bob") if "expired" in e.text])

    assert await executions(app_db_url) == 0
    outcomes = [
        (actor, outcome)
        for actor, action, outcome in await audit_actions(database_url)
        if action == "approval.refused"
    ]
    assert ("U0DAVE", "not_approver") in outcomes
    assert ("U0BOB", "unknown_request") in outcomes
    assert ("U0BOB", "already_denied") in outcomes
    assert ("U0BOB", "not_requester") in outcomes
    assert ("U0BOB", "already_cancelled") in outcomes
    assert ("U0BOB", "expired") in outcomes


async def test_a_preview_that_changed_since_the_request_is_refused(
    slack: LocalSlack, approvals_bot: BotServer, app_db_url: str, database_url: str
) -> None:
    idle = [await psycopg.AsyncConnection.connect(app_db_url) for _ in range(40)]
    try:
        card = await request_action(slack, "alice", "/db connections idle_minutes=0")
        for conn in idle[10:]:
            await conn.close()
        for _ in range(50):  # closed backends leave pg_stat_activity a moment later
            if await idle_count(app_db_url) <= 10:
                break
            await asyncio.sleep(0.1)
        await slack.click("bob", card, button(card, "approval_approve"))
        refusal = await slack.wait_for(
            lambda: [e for e in slack.ephemerals("bob") if "preview changed" in e.text]
        )
        assert "from 40 to 10 rows" in refusal[-1].text
        assert await idle_count(app_db_url) >= 10
    finally:
        for conn in idle:
            await conn.close()
    assert ("U0BOB", "approval.refused", "preview_changed") in await audit_actions(database_url)


async def test_a_critical_action_needs_two_approvers(
    slack: LocalSlack, approvals_bot: BotServer, app_db_url: str
) -> None:
    await slack.slash("alice", "incident-response", "/runbook run test.counter:record_twice_approved")
    view = await slack.wait_for(lambda: slack.current_view("alice"), timeout=5)
    await slack.submit_view("alice", view, {"reason": "needs two people"})
    card = (
        await slack.wait_for(
            lambda: [
                m for m in slack.messages("incident-response") if "Approval needed" in text_of(m.blocks)
            ],
            timeout=15,
        )
    )[-1]
    await slack.click("bob", card, button(card, "approval_approve"))
    await card_state(slack, card, "1 of 2 approvals")
    assert await executions(app_db_url) == 0
    await slack.click("bob", card, button(card, "approval_approve"))
    await slack.wait_for(lambda: [e for e in slack.ephemerals("bob") if "already approved" in e.text])
    await slack.click("carol", card, button(card, "approval_approve"))
    await card_state(slack, card, "✅ Done")
    assert await executions(app_db_url) == 1


async def test_a_restart_between_request_and_approval_loses_nothing(
    slack: LocalSlack,
    database_url: str,
    data_dir: Path,
    targets_file: Path,
    runbooks_dir: Path,
    executions_table: str,
    app_db_url: str,
) -> None:
    env = {"OPSBOT_TARGETS": str(targets_file), "OPSBOT_RUNBOOKS": str(runbooks_dir)}
    async with running_bot(slack, database_url, data_dir, **env):
        card = await request_action(slack, "alice", "/test counter")
    async with running_bot(slack, database_url, data_dir, **env):
        await slack.click("bob", card, button(card, "approval_approve"))
        await card_state(slack, card, "✅ Done")
    assert await executions(app_db_url) == 1


async def test_the_expiry_job_marks_expired_requests_and_redraws_their_cards(
    slack: LocalSlack,
    database_url: str,
    data_dir: Path,
    targets_file: Path,
    runbooks_dir: Path,
    executions_table: str,
    app_db_url: str,
) -> None:
    async with running_bot(
        slack,
        database_url,
        data_dir,
        OPSBOT_TARGETS=str(targets_file),
        OPSBOT_RUNBOOKS=str(runbooks_dir),
        OPSBOT_APPROVAL_SWEEP_CRON="* * * * * */1",
    ):
        card = await request_action(slack, "alice", "/test counter")
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await conn.execute("UPDATE approval_requests SET expires_at = now() - interval '1 second'")
        expired = await card_state(slack, card, "Expired", timeout=10)
        assert "approval_approve" not in text_of(expired.blocks)
    assert ("opsbot", "approval.expired", "expired") in await audit_actions(database_url)
    assert await executions(app_db_url) == 0

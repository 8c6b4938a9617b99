"""`/approvals history` and `/opsbot audit <INC-…|REQ-…>` end to end through localslack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from bot.server import BotServer
from localslack import LocalSlack
from tests.approvals.helpers import button, card_state, request_action, text_of
from tests.approvals.test_reaching_approvers import declare, requested
from tests.conftest import running_bot


async def test_history_lists_decided_requests_newest_first_with_who_decided(
    slack: LocalSlack, approvals_bot: BotServer
) -> None:
    done = await request_action(slack, "alice", "/test counter")
    await slack.click("bob", done, button(done, "approval_approve"))
    await card_state(slack, done, "✅ Done")
    denied = await request_action(slack, "alice", "/test counter")
    await slack.click("carol", denied, button(denied, "approval_deny"))
    await card_state(slack, denied, "🚫 Denied")
    cancelled = await request_action(slack, "alice", "/test counter")
    await slack.click("alice", cancelled, button(cancelled, "approval_cancel"))
    await card_state(slack, cancelled, "Cancelled by the requester")
    await request_action(slack, "alice", "/test counter")  # still waiting: not history

    await slack.slash("dave", "incident-response", "/approvals history")
    answer = await slack.wait_for(lambda: [e for e in slack.ephemerals("dave") if "decided" in e.text])
    shown = text_of(answer[-1].blocks)
    assert answer[-1].text.startswith("3 decided")
    lines = [line for line in shown.split("\\n") if "REQ-" in line]
    assert [line.split("*")[1] for line in lines] == ["REQ-0003", "REQ-0002", "REQ-0001"]
    assert "↩️ Cancelled" in lines[0] and "cancelled by <@U0ALICE>" in lines[0]
    assert "🚫 Denied" in lines[1] and "denied by <@U0CAROL>" in lines[1]
    assert "✅ Done" in lines[2] and "approved by <@U0BOB>" in lines[2]
    assert "REQ-0004" not in shown

    await slack.slash("dave", "general", "/approvals history")
    await slack.wait_for(
        lambda: [e for e in slack.ephemerals("dave") if "No approval requests have been decided" in e.text]
    )


@pytest.fixture
async def audited_bot(
    slack: LocalSlack,
    database_url: str,
    data_dir: Path,
    targets_file: Path,
    runbooks_dir: Path,
    executions_table: str,
) -> AsyncIterator[BotServer]:
    """The approvals bot with `managers` (carol) as the auditors group."""
    async with running_bot(
        slack,
        database_url,
        data_dir,
        OPSBOT_TARGETS=str(targets_file),
        OPSBOT_RUNBOOKS=str(runbooks_dir),
        OPSBOT_AUDITORS_GROUP="managers",
    ) as server:
        yield server


async def test_an_auditor_reads_a_requests_audit_events_redacted_with_the_chain_status(
    slack: LocalSlack, audited_bot: BotServer
) -> None:
    card = await request_action(
        slack,
        "alice",
        "/test counter",
        reason="copied from postgresql://admin:hunter2secret@db.internal/prod",
    )
    await slack.click("bob", card, button(card, "approval_approve"))
    await card_state(slack, card, "✅ Done")

    await slack.slash("carol", "incident-response", "/opsbot audit req-0001")
    answer = await slack.wait_for(
        lambda: [e for e in slack.ephemerals("carol") if "Audit of REQ-0001" in e.text]
    )
    shown = text_of(answer[-1].blocks)
    assert "Audit chain verified" in answer[-1].text and "Audit chain verified" in shown
    for action in ("approval.requested", "approval.approved", "approval.started", "approval.succeeded"):
        assert action in shown, action
    assert "<@U0ALICE>" in shown and "<@U0BOB>" in shown
    assert "hunter2secret" not in shown and "hunter2secret" not in answer[-1].text
    assert "postgresql://admin:***@db.internal" in shown
    assert not [m for m in slack.messages("incident-response") if "Audit of" in m.text], "ephemeral only"


async def test_a_non_auditor_is_refused_politely_and_the_refusal_is_audited(
    slack: LocalSlack, audited_bot: BotServer, database_url: str
) -> None:
    await request_action(slack, "alice", "/test counter")
    await slack.slash("bob", "incident-response", "/opsbot audit REQ-0001")
    refusal = await slack.wait_for(lambda: [e for e in slack.ephemerals("bob") if "audit log" in e.text])
    assert "only shown to members of the `managers` user group" in refusal[-1].text
    assert "approval.requested" not in text_of(refusal[-1].blocks) + refusal[-1].text

    await slack.slash("carol", "incident-response", "/opsbot audit last-week")
    usage = await slack.wait_for(lambda: [e for e in slack.ephemerals("carol") if "Which incident" in e.text])
    assert "/opsbot audit <INC-…|REQ-…>" in usage[-1].text
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (
            await conn.execute("SELECT actor, outcome, subject FROM audit_events WHERE action = 'audit.read'")
        ).fetchall()
    assert rows == [("U0BOB", "not_auditor", "REQ-0001")]


async def test_an_incidents_audit_holds_the_requests_made_in_its_channel(
    slack: LocalSlack, audited_bot: BotServer
) -> None:
    name = await declare(slack)
    incident_id = next(m.text for m in slack.messages(name) if "INC-" in m.text).split("INC-")[1][:9]
    card = await requested(slack, name, "record")
    await slack.click("carol", card, button(card, "approval_deny"))
    await slack.wait_for(lambda: "🚫 Denied" in text_of(slack.message(name, card.ts).blocks))

    await slack.slash("carol", name, f"/opsbot audit INC-{incident_id}")
    answer = await slack.wait_for(lambda: [e for e in slack.ephemerals("carol") if "Audit of INC-" in e.text])
    shown = text_of(answer[-1].blocks)
    assert "approval.requested" in shown and "approval.denied" in shown and "REQ-0001" in shown
    assert "Audit chain verified" in shown

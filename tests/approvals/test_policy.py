"""Policy: who may request, in which channel; a copy of the card elsewhere cannot be used."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from bot.approvals.policy import PolicyError, load_policy
from bot.server import BotServer
from localslack import LocalSlack
from tests.approvals.helpers import button, request_action, text_of
from tests.conftest import running_bot

POLICY = """
defaults:
  high: {approvers: [approvers], approvals: 1, expiry_minutes: 10}
overrides:
  test.counter: {requesters: [oncall], channels: [incident-response]}
"""


@pytest.fixture
async def strict_bot(
    slack: LocalSlack,
    database_url: str,
    data_dir: Path,
    targets_file: Path,
    runbooks_dir: Path,
    executions_table: str,
    tmp_path: Path,
) -> AsyncIterator[BotServer]:
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    async with running_bot(
        slack,
        database_url,
        data_dir,
        OPSBOT_TARGETS=str(targets_file),
        OPSBOT_RUNBOOKS=str(runbooks_dir),
        OPSBOT_POLICY=str(policy),
    ) as server:
        yield server


async def test_only_the_requester_group_may_request_and_only_in_allowed_channels(
    slack: LocalSlack, strict_bot: BotServer, app_db_url: str
) -> None:
    await slack.slash("bob", "incident-response", "/runbook run test.counter:record")
    refusal = await slack.wait_for(lambda: [e for e in slack.ephemerals("bob") if "not in a group" in e.text])
    assert refusal
    assert slack.current_view("bob") is None
    await slack.slash("alice", "general", "/runbook run test.counter:record")
    refusal = await slack.wait_for(
        lambda: [e for e in slack.ephemerals("alice") if "#incident-response" in e.text]
    )
    assert refusal
    assert slack.current_view("alice") is None
    card = await request_action(slack, "alice", "/test counter")
    assert "expires" in text_of(card.blocks)


async def test_a_copy_of_the_card_in_another_channel_cannot_approve(
    slack: LocalSlack, strict_bot: BotServer, app_db_url: str
) -> None:
    card = await request_action(slack, "alice", "/test counter")
    copy = await slack.post("carol", "general", "look at this", blocks=card.blocks)
    assert copy.message is not None
    await slack.click("bob", copy.message, button(copy.message, "approval_approve"))
    await slack.wait_for(lambda: [e for e in slack.ephemerals("bob") if "not the channel" in e.text])
    async with await psycopg.AsyncConnection.connect(app_db_url) as conn:
        assert await (await conn.execute("SELECT count(*) FROM executions")).fetchone() == (0,)


def test_a_bad_policy_file_is_one_readable_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.yml"
    path.write_text("defaults:\n  high: {approvals: 7}\n")
    with pytest.raises(PolicyError, match=r"defaults\.high\.approvals"):
        load_policy(path)
    path.write_text('overrides:\n  test.counter: {approvers: ["not a principal!"]}\n')
    with pytest.raises(PolicyError, match="approvers"):
        load_policy(path)

"""SIGKILL between approval and execution, and during execution: a definite state, never a second run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from bot.audit import verify as verify_chain
from localslack import LocalSlack
from tests.approvals.helpers import button, card_state, request_action
from tests.reliability.conftest import bot_process, executions


async def _state(database_url: str, request_id: str) -> str:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        row = await (
            await conn.execute("SELECT state FROM approval_requests WHERE id = %s", (request_id,))
        ).fetchone()
        return str(row[0]) if row else "missing"


async def _wait_state(database_url: str, request_id: str, state: str, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while await _state(database_url, request_id) != state:
            await asyncio.sleep(0.05)


def _request_id(card_text: str) -> str:
    return next(word.strip("()") for word in card_text.split() if word.strip("()").startswith("REQ-"))


async def test_killed_while_running_the_card_says_interrupted_and_it_never_runs_again(
    slack: LocalSlack, database_url: str, data_dir: Path, slow_bot_env: dict[str, str], app_db_url: str
) -> None:
    env = slow_bot_env
    async with bot_process(slack, database_url, data_dir, **env) as bot:
        card = await request_action(slack, "alice", "/test slow")
        request_id = _request_id(card.text)
        await slack.click("bob", card, button(card, "approval_approve"))
        await _wait_state(database_url, request_id, "running")
        bot.kill()
    async with bot_process(slack, database_url, data_dir, **env):
        interrupted = await card_state(slack, card, "Interrupted", timeout=40)
        assert "outcome is unknown" in str(interrupted.blocks)
        # Long past the step's own duration: it ran at most the once it had started, never again.
        await asyncio.sleep(3)
        assert await executions(app_db_url) <= 1
        assert await _state(database_url, request_id) == "failed"
        thread = slack.thread("incident-response", card.ts)
        assert sum("Interrupted" in m.text for m in thread) == 1
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        assert (await verify_chain(conn)).ok


@pytest.mark.parametrize("ts_stored", [True, False], ids=["card-ts-stored", "died-before-storing-card-ts"])
async def test_killed_between_approval_and_run_it_is_marked_not_run_and_nothing_changes(
    slack: LocalSlack,
    database_url: str,
    data_dir: Path,
    slow_bot_env: dict[str, str],
    app_db_url: str,
    ts_stored: bool,
) -> None:
    env = slow_bot_env
    async with bot_process(slack, database_url, data_dir, **env) as bot:
        card = await request_action(slack, "alice", "/test slow")
        request_id = _request_id(card.text)
        bot.kill()
    # What the approve handler commits before it starts the run; the process died right after.
    # Killed this early, the process may not have stored the card's ts yet; the other case forces it.
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(
            """UPDATE approval_requests SET state = 'approved', approvers = ARRAY['U0BOB'],
                   decided_by = 'U0BOB', decided_at = now() - interval '1 minute',
                   message_ts = CASE WHEN %s THEN message_ts END
               WHERE id = %s AND state IN ('requested', 'pending')""",
            (ts_stored, request_id),
        )
        assert cur.rowcount == 1
    async with bot_process(slack, database_url, data_dir, **env):
        marked = await card_state(slack, card, "Not run", timeout=20)
        assert "Nothing was changed" in str(marked.blocks)
        notes = await slack.wait_for(
            lambda: [m for m in slack.thread("incident-response", card.ts) if "Not run" in m.text]
        )
        assert len(notes) == 1
        await asyncio.sleep(3)
    assert await executions(app_db_url) == 0
    assert await _state(database_url, request_id) == "failed"

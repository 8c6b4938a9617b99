"""Slack down longer than the client retries: an action's result waits in PostgreSQL, then lands once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg

from localslack import LocalSlack
from tests.approvals.conftest import COUNTER
from tests.approvals.helpers import button, card_state, request_action
from tests.conftest import running_bot


async def test_an_action_result_posted_during_a_slack_outage_is_delivered_later_exactly_once(
    slack: LocalSlack, database_url: str, app_db_url: str, data_dir: Path, tmp_path: Path, targets_file: Path
) -> None:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "counter.yml").write_text(COUNTER)
    async with await psycopg.AsyncConnection.connect(app_db_url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE executions (id serial PRIMARY KEY, at timestamptz DEFAULT now())")
    env = {"OPSBOT_RUNBOOKS": str(runbooks), "OPSBOT_TARGETS": str(targets_file)}
    async with running_bot(slack, database_url, data_dir, **env):
        card = await request_action(slack, "alice", "/test counter")
        # Slack fails every post for a while: the two posts the run makes (its result and the
        # before → after) fail their three tries each, are queued, and fail their first queued try.
        slack.faults.fail_next("chat.postMessage", times=12, status=503, error="service_unavailable")
        await slack.click("bob", card, button(card, "approval_approve"))
        await card_state(slack, card, "✅ Done")

        def thread(text: str) -> list[str]:
            return [m.text for m in slack.thread("incident-response", card.ts) if text in m.text]

        async with asyncio.timeout(15):
            while (
                len(slack.calls("chat.postMessage", ok=False)) < 12 or await _queued_posts(database_url) < 2
            ):
                await asyncio.sleep(0.05)
        assert thread("succeeded") == [], "a post landed while Slack was refusing every one"
        await slack.wait_for(lambda: thread("succeeded") and thread("Before → after"), timeout=30)
        await asyncio.sleep(1.0)
        assert len(thread("succeeded")) == 1
        assert len(thread("Before → after")) == 1
        assert len(slack.calls("chat.postMessage", ok=False)) == 12
        assert await _queued_posts(database_url) == 0


async def _queued_posts(database_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        row = await (
            await conn.execute(
                """SELECT count(*) FROM procrastinate_jobs
                   WHERE task_name = 'slack.post' AND status IN ('todo', 'doing')"""
            )
        ).fetchone()
        return int(row[0]) if row else -1

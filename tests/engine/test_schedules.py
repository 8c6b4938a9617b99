"""Scheduled runbooks run when their cron matches a tick, once, and post to their channel."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg

from localslack import LocalSlack
from tests.conftest import running_bot

SCHEDULED = """
id: test.daily
title: Daily health check
summary: runs on a schedule
source: {seed: 003_0949c7170dea1195.txt, section: "Daily"}
schedule: {cron: "* * * * * */2", channel: general}
checks:
  - id: db
    title: Database answers
    probe: {kind: postgres, target: app_db, sql: "SELECT 1 AS up"}
    value: up
    crit: {op: "!=", value: 1}
"""


async def test_a_scheduled_runbook_posts_its_card_to_its_channel_on_each_matching_tick(
    slack: LocalSlack, database_url: str, data_dir: Path, targets_file: Path, tmp_path: Path
) -> None:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "daily.yml").write_text(SCHEDULED)
    async with running_bot(
        slack,
        database_url,
        data_dir,
        OPSBOT_TARGETS=str(targets_file),
        OPSBOT_RUNBOOKS=str(runbooks),
        OPSBOT_SCHEDULE_TICK_CRON="* * * * * *",
    ):
        cards = await slack.wait_for(
            lambda: (
                len([m for m in slack.messages("general") if "Scheduled: 🟢 Daily health check" in m.text])
                >= 2
            ),
            timeout=10,
        )
        assert cards
        await asyncio.sleep(0.5)
    posted = [m for m in slack.messages("general") if "Daily health check" in m.text]
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (
            await conn.execute(
                "SELECT count(*) FROM diagnosis_runs WHERE runbook_id = 'test.daily' AND channel = 'general'"
            )
        ).fetchone()
    assert rows == (len(posted),), "every run is recorded with the card it posted"

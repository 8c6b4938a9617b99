"""A diagnosis acknowledged by a replica that then dies is still posted, once, by another (issue #19:
under Slack's pacing a card can wait in a replica for seconds, and a kill then lost it)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.services.diagnosis_takeover import TASK
from bot.slack.client import marked_post_id
from localslack import LocalSlack, Message
from tests.conftest import running_bot
from tests.reliability.conftest import bot_process

SLEEPY = """
id: test.sleepy
title: Sleepy check
summary: a diagnosis whose one check takes three seconds, so a test can kill the bot mid-answer
source: {seed: 004_64a8611e63a2df9d.txt, section: "Performance Diagnosis"}
command: {family: test, subcommand: sleepy}
deadline_s: 6
checks:
  - id: slept
    title: Slept for three seconds
    probe: {kind: postgres, target: app_db, sql: "SELECT 1 AS slept FROM pg_sleep(3)"}
    value: slept
"""


@pytest.fixture
def sleepy_env(tmp_path: Path, targets_file: Path) -> dict[str, str]:
    directory = tmp_path / "runbooks"
    directory.mkdir()
    (directory / "sleepy.yml").write_text(SLEEPY)
    return {"OPSBOT_TARGETS": str(targets_file), "OPSBOT_RUNBOOKS": str(directory)}


def _cards(slack: LocalSlack) -> list[Message]:
    ours = [m for m in slack.messages("general") if m.user == slack.bot_user_id]
    return [m for m in ours if "Sleepy check" in str(m.blocks)]


async def _take_over_jobs(database_url: str) -> list[tuple[int, dict[str, Any]]]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (
            await conn.execute("SELECT id, args FROM procrastinate_jobs WHERE task_name = %s", (TASK,))
        ).fetchall()
    return [(int(job_id), dict(args)) for job_id, args in rows]


async def _one_take_over_job(database_url: str) -> tuple[int, dict[str, Any]]:
    async with asyncio.timeout(10):
        while not (jobs := await _take_over_jobs(database_url)):
            await asyncio.sleep(0.05)
    assert len(jobs) == 1, jobs
    return jobs[0]


async def test_a_diagnosis_whose_bot_died_after_the_ack_is_posted_once_by_another(
    slack: LocalSlack, database_url: str, data_dir: Path, sleepy_env: dict[str, str]
) -> None:
    async with bot_process(slack, database_url, data_dir, **sleepy_env) as bot:
        assert (await slack.slash("alice", "general", "/test sleepy")).ok
        job_id, arguments = await _one_take_over_job(database_url)
        bot.kill()  # three seconds into a three-second check: the card was never posted
    assert not _cards(slack)
    # Due only after the answer's own limit (deadline + 45 s): brought forward rather than waited for.
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE id = %s", (job_id,))
    async with running_bot(slack, database_url, data_dir, **sleepy_env) as server:
        await slack.wait_for(lambda: _cards(slack), timeout=30, interval=0.1)
        [card] = _cards(slack)
        assert card.text.startswith("Posted late")
        assert marked_post_id({"metadata": card.metadata}) == arguments["post_id"]
        # The same job once more, as a stalled job is requeued: it finds the card and stands down.
        assert server.runtime is not None
        await server.runtime.jobs.defer(TASK, **{k: v for k, v in arguments.items() if k != "_tags"})
        async with asyncio.timeout(20):
            while await _take_over_jobs(database_url):
                await asyncio.sleep(0.1)
        assert len(_cards(slack)) == 1, [c.text for c in _cards(slack)]


async def test_a_diagnosis_answered_in_time_leaves_no_take_over_behind(
    slack: LocalSlack, database_url: str, data_dir: Path, sleepy_env: dict[str, str]
) -> None:
    async with running_bot(slack, database_url, data_dir, **sleepy_env):
        assert (await slack.slash("alice", "general", "/test sleepy")).ok
        _, arguments = await _one_take_over_job(database_url)
        await slack.wait_for(lambda: _cards(slack), timeout=20, interval=0.1)
        [card] = _cards(slack)
        assert not card.text.startswith("Posted late")
        assert marked_post_id({"metadata": card.metadata}) == arguments["post_id"]
        async with asyncio.timeout(5):
            while await _take_over_jobs(database_url):
                await asyncio.sleep(0.05)
    assert arguments["asker"]["user"] == slack.user("alice").id

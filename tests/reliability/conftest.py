"""A bot in its own process (so it can be SIGKILLed), and a runbook whose action is slow enough to kill."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from localslack import LocalSlack
from tests.approvals.conftest import executions_table  # noqa: F401  (a fixture, shared)
from tests.approvals.test_two_person_rule import executions  # noqa: F401
from tests.conftest import bot_env

OPSBOT = str(Path(sys.executable).with_name("opsbot"))

SLOW = """
id: test.slow
title: Slow counter
summary: an action that records each run after a pause, so a test can kill the bot mid-run
source: {seed: 004_64a8611e63a2df9d.txt, section: "Performance Diagnosis"}
command: {family: test, subcommand: slow}
deadline_s: 2
checks:
  - id: runs
    title: Executions so far
    probe: {kind: postgres, target: app_db, sql: "SELECT count(*) AS runs FROM executions"}
    value: runs
actions:
  - id: record_slowly
    title: Record one execution slowly
    summary: waits two seconds, then inserts one row into executions
    risk: high
    timeout_s: 3
    step:
      kind: postgres
      target: app_db
      sql: "INSERT INTO executions (at) SELECT now() FROM pg_sleep(2) RETURNING id"
next:
  - suggest: ["action:record_slowly"]
"""


@pytest.fixture
def runbooks_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "runbooks"
    directory.mkdir()
    (directory / "slow.yml").write_text(SLOW)
    return directory


@pytest.fixture
def slow_bot_env(targets_file: Path, runbooks_dir: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """The slow-action catalogue, the test's targets, and an approval sweep every second."""
    request.getfixturevalue("executions_table")
    return {
        "OPSBOT_TARGETS": str(targets_file),
        "OPSBOT_RUNBOOKS": str(runbooks_dir),
        "OPSBOT_APPROVAL_SWEEP_CRON": "* * * * * */1",
    }


class BotProcess:
    """`opsbot serve` as a child process pointed at the emulator."""

    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like the OOM killer or a lost node."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


@asynccontextmanager
async def bot_process(
    slack: LocalSlack, database_url: str, data_dir: Path, **extra: str
) -> AsyncIterator[BotProcess]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_", "REDIS_", "OPSBOT_"))
    }
    env.update(bot_env(slack, database_url, data_dir, OPSBOT_LOG_FORMAT="json", **extra))
    proc = subprocess.Popen(
        [OPSBOT, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        first = await asyncio.to_thread(proc.stdout.readline)
        assert first.startswith("opsbot is up in"), first + (proc.stderr.read() if proc.stderr else "")
        url = first.split(": ", 1)[1].split()[0]
        slack.request_url = f"{url}/slack/events"
        yield BotProcess(proc, url)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

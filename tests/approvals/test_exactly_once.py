"""Twenty Approve clicks from two approvers across two bot processes run the action exactly once."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from localslack import LocalSlack
from tests.approvals.helpers import button, card_state, request_action
from tests.conftest import bot_env

OPSBOT = str(Path(sys.executable).with_name("opsbot"))


@pytest.fixture
def two_replicas(
    slack: LocalSlack,
    database_url: str,
    tmp_path: Path,
    redis_url: str,
    targets_file: Path,
    runbooks_dir: Path,
    executions_table: str,
) -> Iterator[list[tuple[str, Path]]]:
    """Two `opsbot serve` processes sharing PostgreSQL and Redis: (events URL, log file) each."""
    procs, replicas = [], []
    for n in range(2):
        data_dir = tmp_path / f"replica{n}"
        data_dir.mkdir()
        log_path = tmp_path / f"replica{n}.log"
        env = {
            **os.environ,
            **bot_env(
                slack,
                database_url,
                data_dir,
                REDIS_URL=redis_url,
                OPSBOT_TARGETS=str(targets_file),
                OPSBOT_RUNBOOKS=str(runbooks_dir),
                OPSBOT_LOG_FORMAT="json",
            ),
        }
        with log_path.open("w") as log_file:
            proc = subprocess.Popen(
                [OPSBOT, "serve"], env=env, stdout=subprocess.PIPE, stderr=log_file, text=True
            )
        procs.append(proc)
        assert proc.stdout is not None
        match = re.search(r"(http://127\.0\.0\.1:\d+)", proc.stdout.readline())
        assert match
        replicas.append((match.group(1) + "/slack/events", log_path))
    yield replicas
    for proc in procs:
        proc.terminate()
    for proc in procs:
        assert proc.wait(30) == 0


async def test_twenty_concurrent_approvals_on_two_replicas_run_the_action_once(
    slack: LocalSlack, two_replicas: list[tuple[str, Path]], app_db_url: str
) -> None:
    (first_url, first_log), (second_url, second_log) = two_replicas
    slack.request_url = first_url
    card = await request_action(slack, "alice", "/test counter")
    approve = button(card, "approval_approve")
    clicks = []
    for url in (first_url, second_url):
        # The driver reads the request URL before its first await, so each batch goes to one replica.
        slack.request_url = url
        clicks += [asyncio.create_task(slack.click(user, card, approve)) for user in ("bob", "carol") * 5]
        await asyncio.sleep(0)
    deliveries = await asyncio.gather(*clicks)
    assert all(d.ok for d in deliveries)
    await card_state(slack, card, "✅ Done")
    await asyncio.sleep(1.0)  # let any straggling decision finish before counting
    async with await psycopg.AsyncConnection.connect(app_db_url) as conn:
        assert await (await conn.execute("SELECT count(*) FROM executions")).fetchone() == (1,)
    for log_path in (first_log, second_log):
        assert '"approval_id"' in log_path.read_text(), f"{log_path.name} handled none of the clicks"

"""Runbooks, targets and a bot for the two-person-rule tests."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from bot.server import BotServer
from localslack import LocalSlack
from tests.conftest import running_bot

ROOT = Path(__file__).resolve().parents[2]

COUNTER = """
id: test.counter
title: Execution counter
summary: an action that records each time it runs, to count executions on the target
source: {seed: 004_64a8611e63a2df9d.txt, section: "Performance Diagnosis"}
command: {family: test, subcommand: counter}
checks:
  - id: runs
    title: Executions so far
    probe: {kind: postgres, target: app_db, sql: "SELECT count(*) AS runs FROM executions"}
    value: runs
actions:
  - id: record
    title: Record one execution
    summary: inserts one row into executions
    risk: high
    step: {kind: postgres, target: app_db, sql: "INSERT INTO executions DEFAULT VALUES RETURNING id"}
    verify: [runs]
  - id: record_twice_approved
    title: Record one execution (critical)
    risk: critical
    step: {kind: postgres, target: app_db, sql: "INSERT INTO executions DEFAULT VALUES RETURNING id"}
  - id: forget
    title: Forget recorded executions
    summary: deletes the rows in executions (low risk, previewed)
    risk: low
    preview: {kind: postgres, target: app_db, sql: "SELECT id FROM executions"}
    step: {kind: postgres, target: app_db, sql: "DELETE FROM executions RETURNING id"}
  - id: flush
    title: Flush the cache
    risk: critical
    step: {kind: redis, target: cache, command: FLUSHDB}
next:
  - suggest: ["action:record"]
"""


@pytest.fixture
def runbooks_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "runbooks"
    (directory / "db").mkdir(parents=True)
    shutil.copy(ROOT / "runbooks" / "db" / "connections.yml", directory / "db" / "connections.yml")
    (directory / "counter.yml").write_text(COUNTER)
    return directory


@pytest.fixture
async def executions_table(app_db_url: str) -> str:
    async with await psycopg.AsyncConnection.connect(app_db_url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE executions (id serial PRIMARY KEY, at timestamptz DEFAULT now())")
    return app_db_url


@pytest.fixture
async def approvals_bot(
    slack: LocalSlack,
    database_url: str,
    data_dir: Path,
    targets_file: Path,
    runbooks_dir: Path,
    executions_table: str,
) -> AsyncIterator[BotServer]:
    async with running_bot(
        slack, database_url, data_dir, OPSBOT_TARGETS=str(targets_file), OPSBOT_RUNBOOKS=str(runbooks_dir)
    ) as server:
        yield server

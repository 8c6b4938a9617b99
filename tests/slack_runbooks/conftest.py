"""A small runbook catalogue for the Slack-side tests, and the bot wired to localslack with it."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.server import BotServer
from localslack import LocalSlack
from tests.conftest import running_bot

ROOT = Path(__file__).resolve().parents[2]

ROWS = """
id: test.rows
title: Many rows
summary: a check whose table does not fit in one message
source: {seed: 000_e2e647c03db5623f.txt, section: "Database Connection Pool Leaks"}
command: {family: db, subcommand: rows}
checks:
  - id: rows
    title: Generated rows
    show_rows: true
    probe:
      kind: postgres
      target: app_db
      max_rows: 500
      sql: "SELECT n, repeat('x', 40) AS pad FROM generate_series(1, 300) AS n"
"""

FOLLOW = """
id: test.follow
title: Follow-up suggester
summary: always suggests the connections runbook
source: {seed: 000_e2e647c03db5623f.txt, section: "Database Connection Pool Leaks"}
checks:
  - id: one
    title: One
    probe: {kind: postgres, target: app_db, sql: "SELECT 1 AS n"}
    value: n
next:
  - suggest: ["runbook:db.connections"]
"""


@pytest.fixture
def runbooks_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "runbooks"
    (directory / "db").mkdir(parents=True)
    shutil.copy(ROOT / "runbooks" / "db" / "connections.yml", directory / "db" / "connections.yml")
    (directory / "rows.yml").write_text(ROWS)
    (directory / "follow.yml").write_text(FOLLOW)
    return directory


@pytest.fixture
async def diag_bot(
    slack: LocalSlack, database_url: str, data_dir: Path, targets_file: Path, runbooks_dir: Path
) -> AsyncIterator[BotServer]:
    async with running_bot(
        slack, database_url, data_dir, OPSBOT_TARGETS=str(targets_file), OPSBOT_RUNBOOKS=str(runbooks_dir)
    ) as server:
        yield server

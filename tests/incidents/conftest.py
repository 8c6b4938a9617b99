"""A bot with a small catalogue whose P0/P1 checklists diagnose the test database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.server import BotServer
from localslack import LocalSlack
from tests.conftest import running_bot

CHECKLIST = """
id: incident.{sev}
title: {sev_upper} checklist
summary: the {sev_upper} checklist, cut down for tests
source: {{seed: 000_e2e647c03db5623f.txt, section: "Incident Response Procedures"}}
command: {{family: diagnose, subcommand: {sev}}}
checks:
  - id: db
    title: Database answers
    probe: {{kind: postgres, target: app_db, sql: "SELECT 1 AS up"}}
    value: up
    crit: {{op: "!=", value: 1}}
"""

RESPOND = """
id: incident.respond
title: Response checklist
summary: manual steps
source: {seed: 001_a9dc4c9d7d4cc4f7.txt, section: "Incident Response Process"}
command: {family: incident, subcommand: respond}
manual: ["Acknowledge the alert in PagerDuty", "Join the incident channel"]
"""


@pytest.fixture
def runbooks_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "runbooks"
    directory.mkdir()
    for sev in ("p0", "p1", "p2"):
        (directory / f"{sev}.yml").write_text(CHECKLIST.format(sev=sev, sev_upper=sev.upper()))
    (directory / "respond.yml").write_text(RESPOND)
    return directory


@pytest.fixture
async def incident_bot(
    slack: LocalSlack, database_url: str, data_dir: Path, targets_file: Path, runbooks_dir: Path
) -> AsyncIterator[BotServer]:
    async with running_bot(
        slack, database_url, data_dir, OPSBOT_TARGETS=str(targets_file), OPSBOT_RUNBOOKS=str(runbooks_dir)
    ) as server:
        yield server


RESTART = """
id: test.restart
title: Restart the backend
summary: a restart-type action
source: {seed: 000_e2e647c03db5623f.txt, section: "Incident Response Procedures"}
actions:
  - id: restart
    title: Restart the backend
    risk: high
    restarts_service: true
    step: {kind: postgres, target: app_db, sql: "SELECT 1 AS restarted"}
"""


@pytest.fixture
def runbooks_with_restart(runbooks_dir: Path) -> Path:
    (runbooks_dir / "restart.yml").write_text(RESTART)
    return runbooks_dir


@pytest.fixture
async def pagerduty() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A local stand-in for PagerDuty's Events API v2 endpoint that records what it receives."""
    received: list[dict[str, Any]] = []

    async def enqueue(request: web.Request) -> web.Response:
        body = await request.json()
        received.append(body)
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": body.get("dedup_key")},
            status=202,
        )

    app = web.Application()
    app.router.add_post("/v2/enqueue", enqueue)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/v2/enqueue", received
    await runner.cleanup()


@pytest.fixture
async def paging_bot(
    slack: LocalSlack,
    database_url: str,
    data_dir: Path,
    targets_file: Path,
    runbooks_dir: Path,
    pagerduty: tuple[str, list[dict[str, Any]]],
) -> AsyncIterator[list[dict[str, Any]]]:
    """The incident bot with paging configured; yields what the PagerDuty stand-in received."""
    url, received = pagerduty
    async with running_bot(
        slack,
        database_url,
        data_dir,
        OPSBOT_TARGETS=str(targets_file),
        OPSBOT_RUNBOOKS=str(runbooks_dir),
        OPSBOT_PAGERDUTY_URL=url,
        OPSBOT_PAGERDUTY_ROUTING_KEY="R0UT1NGKEY0123456789abcdef",
    ):
        yield received

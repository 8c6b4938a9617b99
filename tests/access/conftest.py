"""One bot per module for the access tests: a workspace with a full member (bob), an on-call member
(alice), a multi-channel guest (gina), a partner organisation's user (erin, Slack Connect), an
auditor (carol); channels public, private, externally shared, and an incident's channel declared
through `/incident declare`; runbooks of every data class; real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from slack_sdk.web.async_client import AsyncWebClient

from bot.access.gate import AccessGate
from bot.server import BotServer
from localslack import ChannelSeed, LocalSlack, TeamSeed, Timing, UserGroupSeed, UserSeed
from tests.conftest import _fresh_database, opsbot_seed, running_bot
from tests.incidents.conftest import CHECKLIST

ROOT = Path(__file__).resolve().parents[2]
PARTNER = "T0PARTNER"
# Content limits stay Slack's; the clocks are relaxed for a shared 2-core machine.
RELAXED = Timing(ack_timeout=15.0, trigger_ttl=60.0, retry_delays=(0.05, 0.2, 0.2))
QUIET_SCHEDULES = {"OPSBOT_SCHEDULE_TICK_CRON": "0 0 1 1 *", "OPSBOT_APPROVAL_SWEEP_CRON": "0 0 1 1 *"}

SECRET = """
id: secrets.peek
title: Secret store answers
summary: a secret-adjacent diagnosis for the access tests
source: {seed: 000_e2e647c03db5623f.txt, section: "Incident Response Procedures"}
command: {family: secrets, subcommand: peek}
data: secret_adjacent
checks:
  - id: up
    title: Store answers
    probe: {kind: postgres, target: app_db, sql: "SELECT 1 AS up"}
    value: up
    crit: {op: "!=", value: 1}
"""

# A user's events and sessions as db.user shows them; the e-mail is what redaction must mask.
APP_DATA = """
CREATE TABLE events (id serial PRIMARY KEY, user_id text, timestamp timestamptz DEFAULT now(), type text);
CREATE TABLE sessions (id serial PRIMARY KEY, user_id text, created_at timestamptz DEFAULT now(), ip inet);
INSERT INTO events (user_id, type)
    VALUES ('5f0c1c9e-0000-4000-8000-000000000001', 'email_changed:jane.doe@example.com');
INSERT INTO sessions (user_id, ip) VALUES ('5f0c1c9e-0000-4000-8000-000000000001', '203.0.113.7');
"""
CUSTOMER = "5f0c1c9e-0000-4000-8000-000000000001"


def access_seed() -> Any:
    seed = opsbot_seed().extended(
        users=[
            UserSeed(id="U0GINA", name="gina", real_name="Gina Guest", is_restricted=True),
            UserSeed(id="U0ERIN", name="erin", real_name="Erin Partner", team_id=PARTNER),
        ],
        channels=[
            ChannelSeed(id="C0PUBLIC", name="ops", members=["alice", "bob", "carol", "gina", "bot"]),
            ChannelSeed(
                id="C0PRIVATE", name="ops-private", is_private=True, members=["alice", "bob", "gina", "bot"]
            ),
            ChannelSeed(
                id="C0SHARED",
                name="ops-partner",
                is_ext_shared=True,
                connected_team_ids=[PARTNER],
                members=["alice", "bob", "gina", "erin", "bot"],
            ),
        ],
        external_teams=[TeamSeed(id=PARTNER, name="Partner Inc", domain="partner")],
    )
    auditors = UserGroupSeed(id="S0AUDITORS", handle="auditors", name="Auditors", users=["carol"])
    return seed.model_copy(update={"usergroups": [*seed.usergroups, auditors]})


@dataclass
class World:
    slack: LocalSlack
    bot: BotServer
    database_url: str
    app_db_url: str
    incident_channel: str

    @property
    def gate(self) -> AccessGate:
        assert self.bot.runtime is not None
        return self.bot.runtime.services.access

    async def refusals(self, actor: str) -> list[tuple[str, str | None, str | None, str]]:
        """(subject, channel, reason, outcome) of every access refusal of `actor`, oldest first."""
        async with await psycopg.AsyncConnection.connect(self.database_url) as conn:
            cur = await conn.execute(
                """SELECT subject, channel, details->>'reason', outcome FROM audit_events
                   WHERE action = 'access.refused' AND actor = %s ORDER BY id""",
                (actor,),
            )
            return [tuple(row) for row in await cur.fetchall()]

    async def diagnosis_rows(self) -> list[tuple[str, str | None, Any]]:
        async with await psycopg.AsyncConnection.connect(self.database_url) as conn:
            cur = await conn.execute(
                "SELECT runbook_id, requested_by, result FROM diagnosis_runs ORDER BY started_at"
            )
            return [tuple(row) for row in await cur.fetchall()]


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(what)
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def module_database_url(pg_admin_url: str) -> Iterator[str]:
    yield from _fresh_database(pg_admin_url)


@pytest.fixture(scope="module")
def module_app_db_url(pg_admin_url: str) -> Iterator[str]:
    yield from _fresh_database(pg_admin_url)


@pytest.fixture(scope="module")
def access_runbooks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("access") / "runbooks"
    directory.mkdir()
    for sev in ("p0", "p1", "p2"):
        (directory / f"{sev}.yml").write_text(CHECKLIST.format(sev=sev, sev_upper=sev.upper()))
    for name in ("connections", "user"):
        (directory / f"db-{name}.yml").write_text((ROOT / "runbooks" / "db" / f"{name}.yml").read_text())
    (directory / "secrets.yml").write_text(SECRET)
    return directory


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(
    pg_admin_url: str,
    module_database_url: str,
    module_app_db_url: str,
    redis_url: str,
    access_runbooks: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[World]:
    async with await psycopg.AsyncConnection.connect(module_app_db_url, autocommit=True) as conn:
        await conn.execute(APP_DATA)
    base = tmp_path_factory.mktemp("access-bot")
    targets = base / "targets.yml"
    targets.write_text(
        f"targets:\n  app_db: {{kind: postgres, dsn: '{module_app_db_url}', connect_timeout: 3}}\n"
        f"  cache: {{kind: redis, url: '{redis_url}'}}\n"
    )
    data_dir = base / "data"
    data_dir.mkdir()
    async with (
        LocalSlack.running(access_seed(), timing=RELAXED) as slack,
        running_bot(
            slack,
            module_database_url,
            data_dir,
            OPSBOT_TARGETS=str(targets),
            OPSBOT_RUNBOOKS=str(access_runbooks),
            **QUIET_SCHEDULES,
        ) as bot,
    ):
        channel = await _declare_incident(slack, module_database_url)
        yield World(slack, bot, module_database_url, module_app_db_url, channel)


async def _declare_incident(slack: LocalSlack, database_url: str) -> str:
    """An incident's channel, declared as a person would, with bob and gina invited into it."""
    await slack.slash("alice", "incident-response", "/incident declare p2 access tests")

    async def declared() -> str | None:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            row = await (await conn.execute("SELECT channel_id FROM incidents")).fetchone()
        return str(row[0]) if row and row[0] else None

    deadline = asyncio.get_running_loop().time() + 15
    while (channel := await declared()) is None:
        assert asyncio.get_running_loop().time() < deadline, "the incident was not declared"
        await asyncio.sleep(0.05)
    # Declaring ends with the P2 checklist's card: after it nothing more lands in the channel.
    await slack.wait_for(
        lambda: any("P2 checklist" in (m.text or "") for m in slack.messages(channel)), timeout=15
    )
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    await client.conversations_invite(channel=channel, users="U0BOB,U0GINA")
    return channel

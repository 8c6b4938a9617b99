"""Fixtures for the replicas-under-kills test: its catalogue, the target table, and the cluster itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from localslack import LocalSlack
from tests.approvals.conftest import COUNTER, executions_table  # noqa: F401  (a fixture, shared)
from tests.conftest import bot_env, private_redis_server
from tests.ha.cluster import Cluster, running_cluster
from tests.incidents.conftest import CHECKLIST

# P0 timers a hundred times faster: a reminder every 6 s, escalation tiers at 9 s and 18 s.
TIMER_SCALE = 0.01
ALERT_TOKEN = "ha-drill-alertmanager-token-5f1c"


@pytest.fixture
def ha_runbooks(tmp_path: Path) -> Path:
    directory = tmp_path / "runbooks"
    directory.mkdir()
    (directory / "counter.yml").write_text(COUNTER)
    for sev in ("p0", "p1", "p2"):
        (directory / f"{sev}.yml").write_text(CHECKLIST.format(sev=sev, sev_upper=sev.upper()))
    return directory


@pytest.fixture
def alert_routes(tmp_path: Path) -> Path:
    """Every alert group's card in #general; an alert never declares an incident here (the drill
    counts incidents against the declares it typed)."""
    path = tmp_path / "alert-routes.yml"
    path.write_text("default: {channel: general, declare: never}\n")
    return path


@pytest.fixture
async def ha_cluster(
    slack: LocalSlack,
    database_url: str,
    targets_file: Path,
    ha_runbooks: Path,
    executions_table: str,  # noqa: F811
    alert_routes: Path,
    tmp_path: Path,
) -> AsyncIterator[Cluster]:
    """Three replicas on one fresh database and a Redis of their own, HAProxy in front, Slack at it."""
    with private_redis_server() as redis_url:
        env = bot_env(
            slack,
            database_url,
            tmp_path,
            REDIS_URL=redis_url,
            OPSBOT_TARGETS=str(targets_file),
            OPSBOT_RUNBOOKS=str(ha_runbooks),
            OPSBOT_TIMER_SCALE=str(TIMER_SCALE),
            # Interrupted approvals are marked by the sweep; every 5 s instead of every minute.
            OPSBOT_APPROVAL_SWEEP_CRON="* * * * * */5",
            OPSBOT_ALERT_TOKEN_ALERTMANAGER=ALERT_TOKEN,
            OPSBOT_ALERT_ROUTES=str(alert_routes),
        )
        async with running_cluster(env, tmp_path / "ha") as cluster:
            slack.request_url = cluster.front_url + "/slack/events"
            yield cluster

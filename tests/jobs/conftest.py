"""Fixtures for the job queue tests: a migrated database, a runs ledger, and queues stopped afterwards.

Task bodies record each execution in the `job_runs` table (not in process memory), so a run
counted there is a run that really happened, whichever "replica" performed it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from bot.jobs import JobQueue, JobQueueSettings
from bot.store import migrations
from bot.store.pool import create_pool

# Short intervals so timers, heartbeats and stalled-job sweeps happen within a test's seconds.
FAST = JobQueueSettings(
    concurrency=3,
    poll_interval=0.1,
    shutdown_grace=5.0,
    heartbeat_interval=0.5,
    stalled_after=2.0,
    stalled_sweep_cron="* * * * * *",
)


@pytest.fixture
async def jobs_db(database_url: str) -> str:
    """The test database with the bot's migrations (the job queue schema among them) applied."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await migrations.migrate(conn)
        await conn.execute(
            "CREATE TABLE job_runs (label text NOT NULL, detail text, ran_at timestamptz NOT NULL "
            "DEFAULT clock_timestamp())"
        )
    return database_url


class Ledger:
    """Where task bodies write down that they ran."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def record(self, label: str, detail: str | None = None) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("INSERT INTO job_runs (label, detail) VALUES (%s, %s)", (label, detail))

    async def rows(self, label: str | None = None) -> list[tuple[str, str | None, Any]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT label, detail, ran_at FROM job_runs WHERE %(l)s::text IS NULL OR label = %(l)s "
                "ORDER BY ran_at",
                {"l": label},
            )
            return list(await cur.fetchall())

    async def count(self, label: str) -> int:
        return len(await self.rows(label))

    async def wait_for(self, label: str, count: int, timeout: float) -> int:
        """Poll until `label` has at least `count` runs or `timeout` passes; return the count."""
        deadline = time.monotonic() + timeout
        while True:
            seen = await self.count(label)
            if seen >= count or time.monotonic() > deadline:
                return seen
            await asyncio.sleep(0.05)


@pytest.fixture
async def ledger(jobs_db: str) -> AsyncIterator[Ledger]:
    pool = create_pool(jobs_db, max_size=4, name="ledger")
    await pool.open(wait=True, timeout=10)
    try:
        yield Ledger(pool)
    finally:
        await pool.close()


@pytest.fixture
async def make_queue(jobs_db: str) -> AsyncIterator[Callable[..., JobQueue]]:
    """Build JobQueues on the test database (each one a 'replica'); all are stopped at teardown."""
    made: list[JobQueue] = []

    def make(settings: JobQueueSettings = FAST, name: str = "replica") -> JobQueue:
        queue = JobQueue(jobs_db, settings, name=name)
        made.append(queue)
        return queue

    try:
        yield make
    finally:
        for queue in made:
            await queue.stop()

"""The job queue against a real PostgreSQL: schema applied once, timers fire once across replicas,
survive restarts, can be cancelled, periodic ticks fire once, shutdown and crashes lose nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import procrastinate
import psycopg
import pytest
import structlog
from procrastinate.schema import SchemaManager

from bot.jobs import AlreadyQueuedError, JobQueue, JobQueueSettings
from bot.store import migrations
from bot.store.migrations import shipped_migrations

from .conftest import FAST, Ledger

MakeQueue = Callable[..., JobQueue]


def _job_queue_migration() -> migrations.Migration:
    (migration,) = [m for m in shipped_migrations() if m.name == "job_queue"]
    return migration


def test_shipped_schema_is_the_installed_procrastinate_schema() -> None:
    # The migration is procrastinate 3.10's schema; a different procrastinate needs its own
    # migration files appended (see the migration's header), and this test says so.
    assert procrastinate.__version__.startswith("3.10."), procrastinate.__version__
    assert _job_queue_migration().sql.endswith(SchemaManager.get_schema())


async def test_schema_applies_once_with_two_concurrent_starts(database_url: str) -> None:
    async def start() -> list[migrations.Migration]:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            return await migrations.migrate(conn)

    first, second = await asyncio.gather(start(), start())
    job_queue = _job_queue_migration().version
    assert [m.version for m in first + second].count(job_queue) == 1
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM opsbot_migrations WHERE name = 'job_queue'")
        assert await cur.fetchone() == (1,)
        cur = await conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
        assert await cur.fetchone() == (True,)
    queue = JobQueue(database_url, FAST)
    await queue.start(worker=False)
    try:
        assert await queue.pending() == []  # procrastinate's own queries work on the schema
    finally:
        await queue.stop()


async def test_deferred_job_runs_once_not_before_due_with_two_replicas(
    make_queue: MakeQueue, ledger: Ledger
) -> None:
    replicas = [make_queue(name=f"replica-{i}") for i in range(2)]
    for replica in replicas:

        async def remind(incident: str, who: str = replica.name) -> None:
            await ledger.record("remind", f"{incident}@{who}")

        replica.task("remind", remind)
        await replica.start()

    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    job_id = await replicas[0].defer("remind", at=due, incident="INC-1")
    # Ten more due at once: with both workers racing for them, each still runs exactly once.
    for n in range(10):
        await replicas[1].defer("remind", incident=f"INC-burst-{n}")

    assert await ledger.wait_for("remind", 11, timeout=6) == 11
    await asyncio.sleep(1.0)  # long enough for a duplicate to show up, if there were one
    rows = await ledger.rows("remind")
    details = [str(detail).split("@")[0] for _, detail, _ in rows]
    assert sorted(details) == sorted(["INC-1", *(f"INC-burst-{n}" for n in range(10))])
    (ran_at,) = [ran_at for _, detail, ran_at in rows if str(detail).startswith("INC-1@")]
    assert ran_at >= due
    assert await replicas[0].status(job_id) is None  # succeeded jobs are deleted


async def test_job_survives_a_restart(make_queue: MakeQueue, ledger: Ledger) -> None:
    async def expire(approval: str) -> None:
        await ledger.record("expire", approval)

    before = make_queue(name="before")
    before.task("expire", expire)
    await before.start()
    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    job_id = await before.defer("expire", at=due, approval="REQ-0001")
    await before.stop()
    assert await ledger.count("expire") == 0

    after = make_queue(name="after")
    after.task("expire", expire)
    await after.start()
    assert await after.status(job_id) == "todo"
    assert await ledger.wait_for("expire", 1, timeout=5) == 1
    await asyncio.sleep(0.5)
    ((_, detail, ran_at),) = await ledger.rows("expire")
    assert (detail, ran_at >= due) == ("REQ-0001", True)


async def test_a_queue_stopped_right_after_it_started_stops_gracefully_and_keeps_its_jobs(
    make_queue: MakeQueue, ledger: Ledger
) -> None:
    # Stopping while the worker registers used to be lost now and then (Python 3.11's wait_for
    # swallowing the cancel inside psycopg_pool): the worker ran on and stop() hung. Many tries,
    # because the window is a few milliseconds wide.
    async def expire(approval: str) -> None:
        await ledger.record("expire", approval)

    with structlog.testing.capture_logs() as logs:
        for n in range(40):
            queue = make_queue(name=f"quick-{n}")
            queue.task("expire", expire)
            await queue.start()
            await queue.defer("expire", in_seconds=60, approval=f"REQ-{n}")
            await queue.stop()
            assert not queue.worker_running
    events = [entry["event"] for entry in logs]
    assert events.count("job_worker_stopped") == 40
    assert "job_worker_stop_repeated" not in events
    assert await ledger.count("expire") == 0
    reader = make_queue(name="reader")
    await reader.start(worker=False)
    assert len(await reader.pending(task="expire")) == 40


async def test_cancelled_jobs_never_run(make_queue: MakeQueue, ledger: Ledger) -> None:
    async def remind(incident: str, n: int) -> None:
        await ledger.record("remind", f"{incident}#{n}")

    queue = make_queue()
    queue.task("remind", remind)
    await queue.start()

    single = await queue.defer("remind", in_seconds=1, incident="INC-9", n=0)
    for n in range(3):
        await queue.defer("remind", in_seconds=1, tags=["incident:INC-7"], incident="INC-7", n=n)
    await queue.defer("remind", in_seconds=1, tags=["incident:INC-8"], incident="INC-8", n=0)
    await queue.defer("remind", in_seconds=1, queueing_lock="escalate:INC-6", incident="INC-6", n=0)
    with pytest.raises(AlreadyQueuedError):
        await queue.defer("remind", in_seconds=1, queueing_lock="escalate:INC-6", incident="INC-6", n=1)

    assert len(await queue.pending(tag="incident:INC-7")) == 3
    assert await queue.cancel(single) is True
    assert await queue.cancel_tagged("incident:INC-7") == 3
    assert await queue.cancel_queued("escalate:INC-6") is True
    assert await queue.cancel_tagged("incident:INC-7") == 0
    assert await queue.status(single) == "cancelled"
    assert [job.tags for job in await queue.pending(task="remind")] == [["incident:INC-8"]]

    assert await ledger.wait_for("remind", 1, timeout=5) == 1
    await asyncio.sleep(1.0)
    assert [detail for _, detail, _ in await ledger.rows("remind")] == ["INC-8#0"]
    assert await queue.cancel(single) is False


async def test_periodic_task_fires_once_per_tick_across_replicas(
    make_queue: MakeQueue, ledger: Ledger
) -> None:
    replicas = [make_queue(name=f"replica-{i}") for i in range(2)]
    for replica in replicas:

        async def sweep(tick: dt.datetime) -> None:
            await ledger.record("sweep", tick.isoformat())

        replica.periodic("sweep_expired_approvals", "* * * * * */2", sweep)
        await replica.start()

    await asyncio.sleep(5.0)
    for replica in replicas:
        await replica.stop()
    ticks = [detail for _, detail, _ in await ledger.rows("sweep")]
    assert len(ticks) >= 2, ticks
    assert len(ticks) == len(set(ticks)), ticks  # no tick ran twice
    assert all(dt.datetime.fromisoformat(str(t)).second % 2 == 0 for t in ticks)


async def test_stop_lets_a_running_job_finish(make_queue: MakeQueue, ledger: Ledger) -> None:
    started = asyncio.Event()

    async def slow(label: str) -> None:
        started.set()
        await asyncio.sleep(1.0)
        await ledger.record(label)

    queue = make_queue()
    queue.task("slow", slow)
    await queue.start()
    job_id = await queue.defer("slow", label="slow")
    await asyncio.wait_for(started.wait(), timeout=5)
    assert queue.worker_running
    await queue.stop()
    assert not queue.worker_running
    assert await ledger.count("slow") == 1

    check = make_queue(name="check")
    await check.start(worker=False)
    assert await check.status(job_id) is None  # finished and deleted, not aborted or requeued


async def test_job_cut_off_by_shutdown_is_requeued_and_runs_again(
    make_queue: MakeQueue, ledger: Ledger
) -> None:
    started = asyncio.Event()

    async def long(label: str) -> None:
        await ledger.record("attempt", label)
        started.set()
        await asyncio.sleep(30)

    first = make_queue(JobQueueSettings(**{**FAST.model_dump(), "shutdown_grace": 0.3}), name="first")
    first.task("runbook", long)
    await first.start()
    job_id = await first.defer("runbook", label="nightly-vacuum")
    await asyncio.wait_for(started.wait(), timeout=5)
    await first.stop()

    async def quick(label: str) -> None:
        await ledger.record("done", label)

    second = make_queue(name="second")
    second.task("runbook", quick)
    await second.start(worker=False)
    (waiting,) = await second.pending(task="runbook")
    assert (waiting.id, waiting.status, waiting.attempts) == (job_id, "todo", 1)
    await second.stop()

    third = make_queue(name="third")
    third.task("runbook", quick)
    await third.start()
    assert await ledger.wait_for("done", 1, timeout=5) == 1
    assert await ledger.count("attempt") == 1


_DOOMED_REPLICA = """
import asyncio, sys
from bot.jobs import JobQueue, JobQueueSettings

async def main() -> None:
    import psycopg
    settings = JobQueueSettings(poll_interval=0.1, heartbeat_interval=0.5)
    queue = JobQueue(sys.argv[1], settings, name="doomed")

    async def escalate(incident: str) -> None:
        async with await psycopg.AsyncConnection.connect(sys.argv[1], autocommit=True) as conn:
            await conn.execute("INSERT INTO job_runs (label, detail) VALUES ('started', %s)", (incident,))
        await asyncio.sleep(3600)

    queue.task("escalate", escalate)
    await queue.start()
    await queue.defer("escalate", incident="INC-3")
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_job_of_a_killed_replica_is_requeued_and_runs_once(
    jobs_db: str, make_queue: MakeQueue, ledger: Ledger, tmp_path: Path
) -> None:
    script = tmp_path / "doomed.py"
    script.write_text(textwrap.dedent(_DOOMED_REPLICA))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, str(script), jobs_db], env=env)
    try:
        assert await ledger.wait_for("started", 1, timeout=15) == 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
    killed_at = time.monotonic()

    async def escalate(incident: str) -> None:
        await ledger.record("escalated", incident)

    survivor = make_queue(name="survivor")
    survivor.task("escalate", escalate)
    await survivor.start()
    assert await ledger.wait_for("escalated", 1, timeout=10) == 1
    # Not before the dead worker's heartbeat went stale: a live worker's job is never taken.
    assert time.monotonic() - killed_at >= FAST.stalled_after - FAST.heartbeat_interval
    await asyncio.sleep(1.5)
    assert [detail for _, detail, _ in await ledger.rows("escalated")] == ["INC-3"]
    assert await ledger.count("started") == 1

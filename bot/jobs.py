"""The Postgres-backed job queue for timers: approval expiries, incident reminders and escalations,
scheduled runbooks.

`JobQueue` owns one procrastinate `App` per running bot (never one at import time): the task
registry, a small connection pool of its own, and the worker that runs as a background asyncio
task inside the bot process. The schema is the `job_queue` migration, applied with the others.

Guarantees, and where they come from:

- A deferred job is a row in `procrastinate_jobs`; it survives restarts and is taken by exactly one
  worker (`procrastinate_fetch_job_v2` is `FOR UPDATE SKIP LOCKED`), however many replicas run.
- A periodic task fires once per cron tick across replicas: every worker's deferrer tries to insert
  `(task, periodic_id, tick)` into `procrastinate_periodic_defers`, whose unique constraint lets one win.
- A job still running when `stop()`'s grace period ends is cancelled and put back to `todo`, so
  another replica (or this one after its restart) runs it again.
- A job whose process died mid-run stays `doing` under a worker whose heartbeat stops; the built-in
  `opsbot.jobs.requeue_stalled` task puts it back to `todo` (logged, with its attempt count) and,
  after `max_stalled_requeues`, marks it failed so a job that kills its process cannot loop.
  Together these make execution at-least-once: a task must be idempotent (compare-and-set on the
  state it changes), which every opsbot timer is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from procrastinate import App, BaseRetryStrategy, PsycopgConnector, RetryDecision
from procrastinate import exceptions as pexc
from procrastinate import jobs as pjobs
from procrastinate.manager import JobManager
from procrastinate.types import JSONValue
from procrastinate.worker import Worker
from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field

from bot.logs import get_logger

log = get_logger(__name__)

JobFn = Callable[..., Awaitable[object]]
"""A task body: an async callable taking the job's keyword arguments (JSON values)."""

PeriodicFn = Callable[[dt.datetime], Awaitable[object]]
"""A periodic task body: called with the cron tick it runs for (UTC)."""

# Tags travel in the job's arguments under this key and are stripped before the task is called.
_TAGS = "_tags"

_CANCEL_TAGGED = """
SELECT procrastinate_cancel_job_v1(id, false, false) AS id
  FROM procrastinate_jobs
 WHERE status = 'todo'
   AND args @> jsonb_build_object('_tags', jsonb_build_array(%(tag)s::text))
"""

_LIST_PENDING = """
SELECT id, task_name, status, scheduled_at, lock, queueing_lock, args, attempts
  FROM procrastinate_jobs
 WHERE status IN ('todo', 'doing')
   AND (%(tag)s::text IS NULL OR args @> jsonb_build_object('_tags', jsonb_build_array(%(tag)s::text)))
   AND (%(task)s::text IS NULL OR task_name = %(task)s)
 ORDER BY scheduled_at NULLS FIRST, id
"""


# Beyond the grace for running jobs, how long a stopping worker may take to wind down.
STOP_MARGIN_S = 5.0
# How long start() waits for the worker to register before it gives up waiting (and logs it).
START_TIMEOUT_S = 30.0


class JobQueueSettings(BaseModel):
    """How the worker behaves; the defaults suit production, tests shorten the intervals."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    concurrency: int = Field(default=4, ge=1, le=64)
    # LISTEN/NOTIFY wakes a worker when a job is inserted, but not when a scheduled job falls due:
    # the poll is what starts timers, so it bounds how late one can fire.
    poll_interval: float = Field(default=1.0, gt=0)
    shutdown_grace: float = Field(default=10.0, ge=0)
    heartbeat_interval: float = Field(default=10.0, gt=0)
    # Well above the heartbeat interval: a worker declared dead while alive gets its jobs run twice.
    # Not much more: a job whose replica died (an escalation, a take-over) waits this long plus a
    # sweep before another replica runs it — under a minute, where a minute's sweep made it two.
    stalled_after: float = Field(default=45.0, gt=0)
    stalled_sweep_cron: str = "* * * * * */15"
    max_stalled_requeues: int = Field(default=3, ge=0)
    # Finished jobs (failed, cancelled, aborted; succeeded ones are deleted at once) kept this long.
    keep_finished_hours: int = Field(default=168, ge=1)
    # A periodic tick missed while every replica was down is still fired if at most this late.
    periodic_max_delay: float = Field(default=600.0, ge=0)


class QueuedJob(BaseModel):
    """A job waiting (`todo`) or running (`doing`), as `JobQueue.pending` reports it."""

    id: int
    task: str
    status: str
    scheduled_at: dt.datetime | None
    lock: str | None
    queueing_lock: str | None
    tags: list[str]
    arguments: dict[str, Any]
    attempts: int


class AlreadyQueuedError(Exception):
    """Another job with this queueing lock is still waiting to run."""

    def __init__(self, queueing_lock: str) -> None:
        super().__init__(f"a job with queueing lock {queueing_lock!r} is already waiting")
        self.queueing_lock = queueing_lock


class _Retry(BaseRetryStrategy):
    """Requeue a job cut off by shutdown at once; retry failures only as the task asked."""

    def __init__(self, retries: int, backoff_seconds: int) -> None:
        self.retries = retries
        self.backoff_seconds = backoff_seconds

    def get_retry_decision(self, *, exception: BaseException, job: pjobs.Job) -> RetryDecision | None:
        # The worker cancels async jobs still running when its grace period ends (we never ask it
        # to abort a running job otherwise), so a cancellation means "interrupted, run it again".
        if isinstance(exception, asyncio.CancelledError | pexc.JobAborted):
            return RetryDecision(retry_in={"seconds": 0})
        if job.attempts < self.retries:
            return RetryDecision(retry_in={"seconds": self.backoff_seconds * (job.attempts + 1)})
        return None


async def _until_registered(runner: Worker, task: asyncio.Task[None]) -> None:
    """Wait until `runner` has registered itself (or its task ended), for at most START_TIMEOUT_S.

    Until then the worker cannot be stopped reliably: a cancel that lands while it takes a pool
    connection can be swallowed by Python 3.11's asyncio.wait_for, which psycopg_pool waits with
    (CPython gh-86296), and the worker then runs on as if never stopped. procrastinate has no
    "started" hook and registering is two quick queries, so this polls.
    """
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
    while runner.run_task is None and not task.done():
        if asyncio.get_running_loop().time() > deadline:
            log.error("job_worker_start_slow", waited_s=START_TIMEOUT_S)
            return
        await asyncio.sleep(0.005)


class JobQueue:
    """Register tasks, then `start()`; `defer` and `cancel` from anywhere in the bot; `stop()` last."""

    def __init__(self, dsn: str, settings: JobQueueSettings | None = None, *, name: str = "opsbot") -> None:
        self.settings = settings or JobQueueSettings()
        self.name = name
        # A pool of its own rather than the bot's: procrastinate's LISTEN connection is opened with
        # the pool's connect kwargs plus autocommit=True, which collides with the bot pool's own
        # autocommit kwarg; it also keeps timers from competing with request traffic for connections.
        connector = PsycopgConnector(
            conninfo=dsn,
            min_size=1,
            max_size=self.settings.concurrency + 4,
            name=f"{name}-jobs",
            timeout=10.0,
            kwargs={"application_name": f"{name}:jobs"},
        )
        self._app = App(
            connector=connector,
            periodic_defaults={"max_delay": self.settings.periodic_max_delay},
        )
        self._worker: asyncio.Task[None] | None = None
        # The procrastinate worker that the `_worker` task runs; stop() asks it to stop gracefully.
        self._runner: Worker | None = None
        self._open = False
        self._register_housekeeping()

    # --- registration (before start) ---------------------------------------------------------

    def task(self, name: str, fn: JobFn, *, retries: int = 0, backoff_seconds: int = 5) -> None:
        """Register `fn` under `name`, the name every replica defers and runs it by.

        `retries` re-runs a job whose body raised, `backoff_seconds * attempt` later; a job is
        always requeued if shutdown interrupts it, whatever `retries` says.
        """

        async def run(**kwargs: Any) -> None:
            kwargs.pop(_TAGS, None)
            await fn(**kwargs)

        self._app.task(name=name, retry=_Retry(retries, backoff_seconds), pass_context=False)(run)

    def periodic(self, name: str, cron: str, fn: PeriodicFn) -> None:
        """Run `fn` at every tick of `cron` (5 fields, or 6 with seconds last), once across replicas."""

        async def run(timestamp: int) -> None:
            await fn(dt.datetime.fromtimestamp(timestamp, dt.UTC))

        task = self._app.task(name=name, retry=_Retry(0, 0), pass_context=False)(run)
        self._app.periodic(cron=cron, periodic_id=name)(task)

    def _register_housekeeping(self) -> None:
        self.periodic("opsbot.jobs.requeue_stalled", self.settings.stalled_sweep_cron, self._requeue_stalled)
        self.periodic("opsbot.jobs.purge_finished", "17 * * * *", self._purge_finished)

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, worker: bool = True) -> None:
        """Open the queue's pool and (unless `worker=False`, for a process that only defers) run
        the worker in the background. Call after migrations, before the bot takes requests."""
        if not self._open:
            await self._app.open_async()
            self._open = True
        if worker and self._worker is None:
            self._runner = Worker(
                app=self._app,
                name=self.name,
                concurrency=self.settings.concurrency,
                wait=True,
                install_signal_handlers=False,
                listen_notify=True,
                fetch_job_polling_interval=self.settings.poll_interval,
                abort_job_polling_interval=max(self.settings.poll_interval, 5.0),
                shutdown_graceful_timeout=self.settings.shutdown_grace,
                update_heartbeat_interval=self.settings.heartbeat_interval,
                stalled_worker_timeout=self.settings.stalled_after,
                delete_jobs=pjobs.DeleteJobCondition.SUCCESSFUL,
            )
            run = self._runner.run()  # type: ignore[no-untyped-call]  # procrastinate is untyped here
            self._worker = asyncio.create_task(run, name=f"{self.name}-jobs-worker")
            self._worker.add_done_callback(self._worker_ended)
            await _until_registered(self._runner, self._worker)
            log.info("job_worker_started", concurrency=self.settings.concurrency)

    @property
    def worker_running(self) -> bool:
        """False if the worker was never started, was stopped, or stopped by itself (see logs)."""
        return self._worker is not None and not self._worker.done()

    def _worker_ended(self, task: asyncio.Task[None]) -> None:
        # procrastinate stops its worker when a side task (listener, heartbeat, deferrer) fails;
        # without this the bot would carry on silently with no timers firing.
        if task.cancelled():
            return
        if task.exception() is not None:
            log.error("job_worker_crashed", exc_info=task.exception())
        else:
            log.error("job_worker_stopped_unexpectedly")

    async def stop(self) -> None:
        """Stop fetching, let running jobs finish for up to `shutdown_grace` seconds (the rest are
        requeued), unregister the worker and close the pool. Call before the bot's pool closes."""
        worker, self._worker = self._worker, None
        runner, self._runner = self._runner, None
        if worker is not None and runner is not None:
            worker.remove_done_callback(self._worker_ended)
            # procrastinate's graceful stop: no more fetching, running jobs get the grace period,
            # then those still running are cancelled (and requeued by _Retry).
            runner.stop()  # type: ignore[no-untyped-call]
            done, _ = await asyncio.wait([worker], timeout=self.settings.shutdown_grace + STOP_MARGIN_S)
            for _ in range(3):
                if done:
                    break
                # Only if the worker never finished starting (see _until_registered) or a
                # job ignores cancellation. Shutdown must not hang; a job still running is
                # requeued as stalled by a replica later.
                log.error("job_worker_stop_repeated")
                worker.cancel()
                done, _ = await asyncio.wait([worker], timeout=STOP_MARGIN_S)
            if not done:
                log.error("job_worker_abandoned_at_stop")
            elif not worker.cancelled() and worker.exception() is not None:
                log.error("job_worker_failed_at_stop", exc_info=worker.exception())
            log.info("job_worker_stopped")
        if self._open:
            await self._app.close_async()
            self._open = False

    # --- deferring and cancelling ------------------------------------------------------------

    async def defer(
        self,
        task: str,
        *,
        at: dt.datetime | None = None,
        in_seconds: float | None = None,
        lock: str | None = None,
        queueing_lock: str | None = None,
        tags: Iterable[str] = (),
        connection: AsyncConnection[Any] | None = None,
        **kwargs: JSONValue,
    ) -> int:
        """Queue a run of `task` with `kwargs` (JSON values) now, `at` a time or `in_seconds`.

        - `queueing_lock`: at most one *waiting* job per value; a second defer raises
          `AlreadyQueuedError` (e.g. one pending reminder per incident). `cancel_queued` finds it.
        - `tags`: labels to cancel a group with one `cancel_tagged` call ("incident:42").
        - `lock`: jobs sharing it never run at the same time, and run in the order they were
          deferred — a waiting job blocks later ones with the same lock even if they fall due
          first, so use it to serialise work on one resource, not to group timers (use tags).
        - `connection`: defer inside the caller's transaction, so the job exists only if the
          change that needs it commits.
        """
        if at is not None and in_seconds is not None:
            raise ValueError("give either at or in_seconds, not both")
        if at is not None and at.utcoffset() is None:
            raise ValueError("at must be timezone-aware")
        if in_seconds is not None:
            at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=in_seconds)
        tag_list = sorted(set(tags))
        args: dict[str, JSONValue] = dict(kwargs)
        if tag_list:
            args[_TAGS] = list[JSONValue](tag_list)
        deferrer = self._app.configure_task(
            task,
            allow_unknown=False,
            schedule_at=at,
            lock=lock,
            queueing_lock=queueing_lock,
            connection=connection,
        )
        try:
            job_id = await deferrer.defer_async(**args)
        except pexc.AlreadyEnqueued:
            raise AlreadyQueuedError(queueing_lock or "") from None
        log.info("job_deferred", job_id=job_id, task=task, scheduled_at=at and at.isoformat(), tags=tag_list)
        return job_id

    async def cancel(self, job_id: int) -> bool:
        """Cancel a job that has not started; False if it is running, finished or unknown."""
        cancelled = await self._jobs.cancel_job_by_id_async(job_id)
        log.info("job_cancelled" if cancelled else "job_not_cancelled", job_id=job_id)
        return cancelled

    async def withdraw(self, job_id: int) -> bool:
        """Cancel a job that has not started and delete it: it was a safety net that was not needed."""
        return await self._jobs.cancel_job_by_id_async(job_id, delete_job=True)

    async def cancel_queued(self, queueing_lock: str) -> bool:
        """Cancel the job waiting under `queueing_lock`, if there is one."""
        waiting = await self._jobs.list_jobs_async(queueing_lock=queueing_lock, status="todo")
        results = [await self.cancel(job.id) for job in waiting if job.id is not None]
        return any(results)

    async def cancel_tagged(self, tag: str) -> int:
        """Cancel every job with `tag` that has not started, in one statement; returns how many."""
        rows = await self._app.connector.execute_query_all_async(_CANCEL_TAGGED, tag=tag)
        count = sum(1 for row in rows if row["id"] is not None)
        log.info("jobs_cancelled_by_tag", tag=tag, count=count)
        return count

    async def pending(self, *, tag: str | None = None, task: str | None = None) -> list[QueuedJob]:
        """Jobs waiting or running, optionally only those with `tag` or of `task`."""
        rows = await self._app.connector.execute_query_all_async(_LIST_PENDING, tag=tag, task=task)
        jobs = []
        for row in rows:
            args = dict(row["args"])
            tags = args.pop(_TAGS, [])
            jobs.append(
                QueuedJob(
                    id=row["id"],
                    task=row["task_name"],
                    status=row["status"],
                    scheduled_at=row["scheduled_at"],
                    lock=row["lock"],
                    queueing_lock=row["queueing_lock"],
                    tags=tags,
                    arguments=args,
                    attempts=row["attempts"],
                )
            )
        return jobs

    async def status(self, job_id: int) -> str | None:
        """`todo`, `doing`, `failed`, `cancelled`, `aborted`; None once gone (succeeded jobs are deleted)."""
        try:
            return (await self._jobs.get_job_status_async(job_id)).value
        except pexc.NoResult:
            return None

    @property
    def _jobs(self) -> JobManager:
        return self._app.job_manager

    # --- housekeeping tasks (periodic, once per tick across replicas) -----------------------

    async def _requeue_stalled(self, _tick: dt.datetime) -> None:
        await self._jobs.prune_stalled_workers(self.settings.stalled_after)
        stalled = await self._jobs.get_stalled_jobs(seconds_since_heartbeat=self.settings.stalled_after)
        for job in stalled:
            assert job.id is not None
            try:
                if job.attempts >= self.settings.max_stalled_requeues:
                    await self._jobs.finish_job_by_id_async(job.id, pjobs.Status.FAILED, delete_job=False)
                    log.error("stalled_job_failed", job_id=job.id, task=job.task_name, attempts=job.attempts)
                else:
                    await self._jobs.retry_job_by_id_async(job.id, dt.datetime.now(dt.UTC))
                    log.warning(
                        "stalled_job_requeued", job_id=job.id, task=job.task_name, attempts=job.attempts + 1
                    )
            except pexc.ConnectorException:
                # Finished or requeued meanwhile (its worker came back, or another sweep got it).
                log.info("stalled_job_already_moved", job_id=job.id)

    async def _purge_finished(self, _tick: dt.datetime) -> None:
        await self._jobs.delete_old_jobs(
            nb_hours=self.settings.keep_finished_hours,
            include_failed=True,
            include_cancelled=True,
            include_aborted=True,
        )

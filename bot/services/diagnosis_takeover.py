"""A person's diagnosis outlives the replica answering it.

A command is acknowledged at once; its diagnosis is run and its card posted afterwards by the replica
that took it, and under Slack's pacing the card may wait there for seconds. A replica killed in that
time would leave an acknowledged command unanswered. So before the work starts a take-over job is
queued in PostgreSQL, due only after the answer's own time limit, and the card carries the job's
marker. The answer withdraws the job when it ends (posted, told ephemerally, refused or failed); if
the replica died first, the job looks for a card with the marker and, finding none, runs the
diagnosis again and posts it. The marker is looked up before every attempt, so the card lands once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.errors import UserError
from bot.jobs import JobQueue
from bot.logs import get_logger
from bot.slack.asker import Asker, tell
from bot.slack.client import InstrumentedWebClient
from bot.slack.priority import Priority, serving

log = get_logger(__name__)

TASK = "diagnosis.take_over"
# Beyond the runbook's own deadline, how long an answer may wait for Slack's pacing before the asker
# is told it comes later (the take-over job then delivers it).
PACING_ALLOWANCE_S = 30.0
# Between the answer's limit and the take-over: a Web API call cut off at the limit has landed by then.
SETTLE_S = 15.0
RETRIES = 12
BACKOFF_SECONDS = 5
# Queueing the job must not hold the answer up when opsbot's own database is slow or down.
QUEUE_TIMEOUT_S = 1.0
LATE = "Posted late (the opsbot replica answering restarted): "


class Pending(BaseModel):
    """An answer in progress, as the take-over job gets it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    post_id: str
    runbook_id: str
    params: dict[str, Any]
    channel: str
    thread_ts: str | None
    heading: str
    asker: dict[str, str | None]

    @classmethod
    def of(
        cls,
        post_id: str,
        runbook_id: str,
        params: dict[str, Any],
        *,
        channel: str,
        thread_ts: str | None,
        heading: str,
        asker: Asker,
    ) -> Pending:
        return cls(
            post_id=post_id,
            runbook_id=runbook_id,
            params=params,
            channel=channel,
            thread_ts=thread_ts,
            heading=heading,
            asker=asdict(asker),
        )

    def person(self) -> Asker:
        return Asker(**self.asker)  # type: ignore[arg-type]


Answer = Callable[[Pending, str], Awaitable[object]]
"""Runs and delivers a pending diagnosis (with this heading) under its marker."""


class TakeOver:
    def __init__(self, jobs: JobQueue, client: InstrumentedWebClient, answer: Answer) -> None:
        self._jobs = jobs
        self._client = client
        self._answer = answer
        jobs.task(TASK, self._take_over, retries=RETRIES, backoff_seconds=BACKOFF_SECONDS)

    @asynccontextmanager
    async def covering(self, pending: Pending, answer_s: float) -> AsyncIterator[None]:
        """Run the answer inside with a take-over behind it; past `answer_s` the asker is told the
        result comes later (`UserError`) and the job delivers it."""
        job_id = await self._queue(pending, answer_s + SETTLE_S)
        limit = asyncio.timeout(answer_s)
        try:
            async with limit:
                yield
        except TimeoutError:
            if not limit.expired():
                await self._withdraw(job_id)
                raise
            log.warning("diagnosis_answer_late", runbook_id=pending.runbook_id, taken_over=job_id is not None)
            if job_id is None:
                raise UserError(
                    f"Slack is pacing messages here and `{pending.runbook_id}` could not be posted. "
                    "Please run it again in a minute."
                ) from None
            raise UserError(
                f"Slack is pacing messages here: the result of `{pending.runbook_id}` will be posted in "
                "this channel as soon as it can go."
            ) from None
        except Exception:
            await self._withdraw(job_id)
            raise
        await self._withdraw(job_id)

    async def _queue(self, pending: Pending, in_seconds: float) -> int | None:
        try:
            async with asyncio.timeout(QUEUE_TIMEOUT_S):
                return await self._jobs.defer(TASK, in_seconds=in_seconds, **pending.model_dump(mode="json"))
        except Exception as exc:  # the answer goes ahead unguarded rather than not at all
            log.warning("diagnosis_take_over_not_queued", error=type(exc).__name__)
            return None

    async def _withdraw(self, job_id: int | None) -> None:
        if job_id is None:
            return
        with suppress(Exception):  # a job left behind finds the card's marker and stands down
            await self._jobs.withdraw(job_id)

    async def _take_over(self, **arguments: Any) -> None:
        pending = Pending.model_validate(arguments)
        if await self._client.find_post(pending.channel, pending.thread_ts, pending.post_id) is not None:
            log.info("diagnosis_take_over_not_needed", runbook_id=pending.runbook_id)
            return
        log.warning("diagnosis_taken_over", runbook_id=pending.runbook_id, channel=pending.channel)
        with serving(Priority.PERSON):
            try:
                await self._answer(pending, LATE + pending.heading)
            except UserError as exc:
                await tell(self._client, pending.person(), exc.message)

"""The diagnosis service, Slack-agnostic: validate, run (coalesced), and record a runbook's checks."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from bot.coordination import Coordinator
from bot.logs import get_logger
from bot.probes import ProbeRunner
from bot.runbooks.coalesce import DiagnosisCoalescer, coalesce_key
from bot.runbooks.engine import Diagnosis, diagnose
from bot.runbooks.model import Runbook

log = get_logger(__name__)


class DiagnosisService:
    def __init__(
        self, runner: ProbeRunner, coordinator: Coordinator, pool: AsyncConnectionPool | None
    ) -> None:
        self.runner = runner
        self.coalescer = DiagnosisCoalescer(coordinator)
        self._pool = pool

    async def run(self, runbook: Runbook, params: dict[str, Any]) -> tuple[Diagnosis, bool]:
        """Run (or share) the diagnosis; returns it and whether it was shared with another asker."""
        key = coalesce_key(runbook.id, runbook.version, params)

        async def produce() -> Diagnosis:
            return await diagnose(runbook, params, self.runner)

        diagnosis, shared = await self.coalescer.run(key, produce, wait_s=runbook.deadline_s + 1.0)
        log.info(
            "diagnosis_finished",
            runbook_id=runbook.id,
            run_id=diagnosis.run_id,
            overall=diagnosis.overall,
            shared=shared,
            duration_ms=round(diagnosis.duration_ms, 1),
        )
        return diagnosis, shared

    async def record(
        self,
        diagnosis: Diagnosis,
        *,
        shared: bool,
        requested_by: str | None,
        channel: str | None,
        message_ts: str | None,
    ) -> None:
        """Remember who asked for what, where it was posted, and what it found."""
        if self._pool is None:
            return
        async with self._pool.connection() as conn:
            await conn.execute(
                """INSERT INTO diagnosis_runs (run_id, runbook_id, runbook_version, params, overall, shared,
                       requested_by, channel, message_ts, started_at, finished_at, result)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (
                    diagnosis.run_id,
                    diagnosis.runbook_id,
                    diagnosis.runbook_version,
                    Jsonb(diagnosis.params),
                    diagnosis.overall,
                    shared,
                    requested_by,
                    channel,
                    message_ts,
                    diagnosis.started_at,
                    diagnosis.finished_at,
                    Jsonb(diagnosis.model_dump(mode="json")),
                ),
            )

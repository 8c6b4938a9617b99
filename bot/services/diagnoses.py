"""Diagnoses: run a runbook's checks (coalesced), post the card, attach what did not fit, record it.

`deliver` is the one path for every diagnosis that reaches Slack — a slash command, a "Run" button,
an incident's severity checklist, a schedule — so each gets the same reading-policy check (who may
see it where, to the channel or only to the asker, redacted or not), card, overflow file and record.
A run nobody asked for (a schedule, an alert: no asker) puts what it could not see in its
notification text, since no one is watching the card when it lands. A person's diagnosis has a
take-over job behind it (`bot.services.diagnosis_takeover`), so a replica dying after the ack does
not leave the command unanswered.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from slack_sdk.web.async_client import AsyncWebClient

from bot.access.gate import AccessGate
from bot.coordination import Coordinator
from bot.jobs import JobQueue
from bot.logs import get_logger
from bot.probes import ProbeRunner
from bot.render.blocks import Block
from bot.render.diagnosis import diagnosis_blocks, diagnosis_text, full_output
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.coalesce import DiagnosisCoalescer, coalesce_key
from bot.runbooks.commands import RunRequest
from bot.runbooks.engine import Diagnosis, diagnose
from bot.runbooks.model import Runbook
from bot.services.diagnosis_takeover import PACING_ALLOWANCE_S, Pending, TakeOver
from bot.slack.asker import Asker, tell
from bot.slack.client import InstrumentedWebClient
from bot.slack.post import PostFailed, attach_file, post_message

log = get_logger(__name__)


@dataclass(frozen=True)
class _Card:
    """A diagnosis delivered: where its card went (`ts` None: told to the asker, or not posted)."""

    diagnosis: Diagnosis
    shared: bool
    requested_by: str | None
    channel: str
    ts: str | None
    overflow: bool


class DiagnosisService:
    def __init__(
        self,
        runner: ProbeRunner,
        coordinator: Coordinator,
        pool: AsyncConnectionPool | None,
        *,
        catalogue: Catalogue | None = None,
        client: AsyncWebClient | None = None,
        gate: AccessGate | None = None,
        jobs: JobQueue | None = None,
    ) -> None:
        self.runner = runner
        self.coalescer = DiagnosisCoalescer(coordinator)
        self._pool = pool
        self._catalogue = catalogue
        self._client = client
        self._gate = gate
        self._take_over = (
            TakeOver(jobs, client, self._take_over_answer)
            if jobs is not None and isinstance(client, InstrumentedWebClient)
            else None
        )

    def knows(self, runbook_id: str) -> bool:
        return self._catalogue is not None and self._catalogue.get(runbook_id) is not None

    async def deliver(
        self,
        request: RunRequest,
        *,
        channel: str,
        asker: Asker | None,
        thread_ts: str | None = None,
        heading: str = "",
    ) -> Diagnosis:
        """Check the reading policy, run the diagnosis, post its card in `channel` (or `thread_ts`),
        attach long output in the card's thread, and record it. If the card cannot be posted, the
        asker gets it ephemerally.

        Refused by the reading policy → `ReadingRefused` (audited) before anything runs. Allowed
        `ephemeral` → the card goes to the asker only, with no file in the channel; `redact` → what
        is shown and what is recorded are both redacted. `heading` starts the notification text
        ("Scheduled: "); with no asker the text also names the checks that could not be seen."""
        if self._catalogue is None or self._client is None or self._gate is None:
            raise RuntimeError("this DiagnosisService was built without a catalogue, client and gate")
        structlog.contextvars.bind_contextvars(runbook_id=request.runbook_id)
        runbook = self._catalogue.runbooks[request.runbook_id]
        if asker is None or self._take_over is None:
            card = await self._card(runbook, request.params, channel, asker, thread_ts, heading)
        else:
            pending = Pending.of(
                uuid.uuid4().hex,
                runbook.id,
                request.params,
                channel=channel,
                thread_ts=thread_ts,
                heading=heading,
                asker=asker,
            )
            async with self._take_over.covering(pending, runbook.deadline_s + PACING_ALLOWANCE_S):
                card = await self._card(
                    runbook, request.params, channel, asker, thread_ts, heading, pending.post_id
                )
        return await self._finish(card, runbook)

    async def _take_over_answer(self, pending: Pending, heading: str) -> None:
        """The take-over job's answer: the same card, under the marker the lost one would have had."""
        runbook = self._catalogue.get(pending.runbook_id) if self._catalogue else None
        if runbook is None:
            log.warning("diagnosis_take_over_runbook_gone", runbook_id=pending.runbook_id)
            return
        asker = pending.person()
        card = await self._card(
            runbook, pending.params, pending.channel, asker, pending.thread_ts, heading, pending.post_id
        )
        await self._finish(card, runbook)

    async def _card(
        self,
        runbook: Runbook,
        params: dict[str, Any],
        channel: str,
        asker: Asker | None,
        thread_ts: str | None,
        heading: str,
        post_id: str | None = None,
    ) -> _Card:
        """The reading-policy check, the run, and the card posted (or told to the asker)."""
        assert self._client is not None
        assert self._gate is not None
        requested_by = asker.user if asker else None
        decision = await self._gate.reading(runbook, requested_by, channel)
        diagnosis, shared = await self.run(runbook, params)
        if decision.redact:
            diagnosis = self._gate.redact(diagnosis)
        structlog.contextvars.bind_contextvars(run_id=diagnosis.run_id)
        blocks, overflow = diagnosis_blocks(diagnosis, runbook, requested_by=requested_by, shared=shared)
        text = heading + diagnosis_text(diagnosis, unattended=asker is None)
        ts: str | None = None
        if decision.ephemeral and asker is not None:
            await tell(self._client, asker, text, blocks)
        else:
            ts = await self._post(channel, text, blocks, thread_ts, asker, post_id)
        return _Card(diagnosis, shared, requested_by, channel, ts, overflow)

    async def _finish(self, card: _Card, runbook: Runbook) -> Diagnosis:
        """The run recorded, then long output attached in the card's thread.

        The record goes first: the timeline and the review read it, and an attachment can wait
        seconds for Slack's budget."""
        assert self._client is not None
        diagnosis = card.diagnosis
        try:
            await self.record(
                diagnosis,
                shared=card.shared,
                requested_by=card.requested_by,
                channel=card.channel,
                message_ts=card.ts,
            )
        except Exception as exc:  # the card is out; losing the record must not hide it
            log.error("diagnosis_not_recorded", error=str(exc))
        if card.overflow and card.ts is not None:
            await attach_file(
                self._client,
                card.channel,
                card.ts,
                f"{runbook.id}-{diagnosis.run_id}.md",
                full_output(diagnosis, runbook),
                f"{runbook.title}: full output",
            )
        return diagnosis

    async def _post(
        self,
        channel: str,
        text: str,
        blocks: list[Block],
        thread_ts: str | None,
        asker: Asker | None,
        post_id: str | None,
    ) -> str | None:
        """Post the card; if the channel refuses it, the asker gets it ephemerally (None: not posted)."""
        assert self._client is not None
        try:
            return await post_message(
                self._client, channel, text, blocks, thread_ts=thread_ts, post_id=post_id
            )
        except PostFailed as exc:
            log.warning("diagnosis_post_failed", channel=channel, error=exc.error)
            if asker is not None:
                text = f"I could not post in this channel ({exc.error}); here is the result."
                await tell(self._client, asker, text, blocks)
            return None

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

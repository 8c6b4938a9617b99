"""Scheduled runbooks (e.g. the daily 08:00 UTC health check): run when their cron matches a tick.

The tick is a periodic job on the PostgreSQL queue, so each tick is handled once across replicas and a
runbook scheduled for that minute runs once and posts its card to its schedule's channel.
"""

from __future__ import annotations

from datetime import datetime

from croniter import croniter
from slack_sdk.web.async_client import AsyncWebClient

from bot.logs import get_logger
from bot.render.diagnosis import diagnosis_blocks, diagnosis_text
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.params import ParamError, bind_params
from bot.services.diagnoses import DiagnosisService
from bot.slack.post import PostFailed, post_message

log = get_logger(__name__)


async def run_due(
    tick: datetime, catalogue: Catalogue, diagnoses: DiagnosisService, client: AsyncWebClient
) -> int:
    """Run every runbook whose schedule matches `tick`; returns how many ran."""
    ran = 0
    for runbook in catalogue:
        if runbook.schedule is None or not croniter.match(runbook.schedule.cron, tick):
            continue
        try:
            params = bind_params(list(runbook.params), [])
        except ParamError as exc:
            log.error("scheduled_runbook_needs_params", runbook_id=runbook.id, error=str(exc))
            continue
        diagnosis, shared = await diagnoses.run(runbook, params)
        blocks, _ = diagnosis_blocks(diagnosis, runbook, shared=shared)
        channel = runbook.schedule.channel
        ts: str | None = None
        try:
            ts = await post_message(client, channel, f"Scheduled: {diagnosis_text(diagnosis)}", blocks)
        except PostFailed as exc:
            log.error(
                "scheduled_runbook_post_failed", runbook_id=runbook.id, channel=channel, error=exc.error
            )
        await diagnoses.record(diagnosis, shared=shared, requested_by=None, channel=channel, message_ts=ts)
        log.info(
            "scheduled_runbook_ran", runbook_id=runbook.id, overall=diagnosis.overall, tick=tick.isoformat()
        )
        ran += 1
    return ran

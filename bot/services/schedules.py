"""Scheduled runbooks (e.g. the daily 08:00 UTC health check): run when their cron matches a tick.

The tick is a periodic job on the PostgreSQL queue, so each tick is handled once across replicas and a
runbook scheduled for that minute runs once and posts its card to its schedule's channel — through
the same `DiagnosisService.deliver` as a slash command.
"""

from __future__ import annotations

from datetime import datetime

from croniter import croniter

from bot.errors import UserError
from bot.logs import get_logger
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.commands import RunRequest
from bot.runbooks.params import ParamError, bind_params
from bot.services.diagnoses import DiagnosisService

log = get_logger(__name__)


async def run_due(tick: datetime, catalogue: Catalogue, diagnoses: DiagnosisService) -> int:
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
        try:
            diagnosis = await diagnoses.deliver(
                RunRequest(runbook_id=runbook.id, params=params),
                channel=runbook.schedule.channel,
                asker=None,
                heading="Scheduled: ",
            )
        except UserError as exc:  # refused by the reading policy: audited there; the others still run
            log.error("scheduled_runbook_refused", runbook_id=runbook.id, reason=exc.message)
            continue
        log.info(
            "scheduled_runbook_ran", runbook_id=runbook.id, overall=diagnosis.overall, tick=tick.isoformat()
        )
        ran += 1
    return ran

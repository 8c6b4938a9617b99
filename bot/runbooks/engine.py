"""Running a runbook's diagnosis: all checks at once, each within its timeout, judged by thresholds.

A hanging target costs its check's timeout and nothing more; the runbook's deadline bounds the
whole. A probe that errors or times out is `error`, never `ok`. The overall status is the worst
check status, and the follow-ups (`next`) whose conditions match become suggestions.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from bot.probes import ProbeResult, ProbeRunner
from bot.probes.base import ProbeSpecError
from bot.runbooks.model import Check, Runbook, Status

SEVERITY: dict[str, int] = {"ok": 0, "warn": 1, "error": 2, "crit": 3}


class CheckOutcome(BaseModel):
    check_id: str
    title: str
    status: Status
    value: Any = None
    threshold: str = ""
    unit: str = ""
    explain: str = ""
    result: ProbeResult


class Suggestion(BaseModel):
    kind: str  # "runbook" or "action"
    ref: str
    note: str = ""


class Diagnosis(BaseModel):
    run_id: str
    runbook_id: str
    runbook_version: int
    title: str
    params: dict[str, Any]
    overall: Status
    started_at: datetime
    finished_at: datetime
    checks: list[CheckOutcome]
    suggestions: list[Suggestion]

    @property
    def duration_ms(self) -> float:
        return (self.finished_at - self.started_at).total_seconds() * 1000

    def outcome(self, check_id: str) -> CheckOutcome | None:
        return next((c for c in self.checks if c.check_id == check_id), None)


def new_run_id() -> str:
    return "run-" + secrets.token_hex(5)


def worst(statuses: list[Status]) -> Status:
    return max(statuses, key=lambda s: SEVERITY[s]) if statuses else "ok"


def judge(check: Check, result: ProbeResult) -> CheckOutcome:
    base = {
        "check_id": check.id,
        "title": check.title,
        "threshold": check.threshold_text(),
        "unit": check.unit,
        "explain": check.explain,
        "result": result,
    }
    if result.status != "ok":
        return CheckOutcome(status="error", **base)
    if check.value is None:
        return CheckOutcome(status="ok", **base)
    if check.value not in result.values:
        missing = result.model_copy(update={"error": f"the probe returned no value named {check.value}"})
        return CheckOutcome(**{**base, "result": missing}, status="error")
    observed = result.values[check.value]
    if observed is None and (check.warn or check.crit):
        return CheckOutcome(status="ok", value=None, **base)
    return CheckOutcome(status=check.judge(observed), value=observed, **base)


async def run_checks(
    runbook: Runbook,
    checks: list[Check],
    params: dict[str, Any],
    runner: ProbeRunner,
    run_id: str,
) -> list[CheckOutcome]:
    """Run `checks` concurrently; the runbook deadline cuts off whatever is still running."""

    async def one(check: Check) -> CheckOutcome:
        try:
            result = await runner.run(check.probe, params, run_id=run_id, timeout_s=check.timeout_s)
        except ProbeSpecError as exc:
            result = ProbeResult(status="error", values={}, latency_ms=0.0, error=str(exc))
        return judge(check, result)

    if not checks:
        return []
    tasks = [asyncio.create_task(one(check), name=f"{run_id}:{check.id}") for check in checks]
    done, pending = await asyncio.wait(tasks, timeout=runbook.deadline_s)
    for task in pending:
        task.cancel()
    outcomes = []
    for check, task in zip(checks, tasks, strict=True):
        if task in done and not task.cancelled() and task.exception() is None:
            outcomes.append(task.result())
            continue
        reason = (
            f"cut off by the runbook deadline of {runbook.deadline_s:g}s"
            if task in pending
            else f"failed: {type(task.exception()).__name__}"
        )
        result = ProbeResult(status="timeout", values={}, latency_ms=runbook.deadline_s * 1000, error=reason)
        outcomes.append(judge(check, result))
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    return outcomes


def suggestions_for(runbook: Runbook, outcomes: list[CheckOutcome]) -> list[Suggestion]:
    by_id = {o.check_id: o.status for o in outcomes}
    overall = worst([o.status for o in outcomes])
    found: list[Suggestion] = []
    for step in runbook.next:
        if step.when is not None:
            status = by_id.get(step.when.check) if step.when.check else overall
            if status not in step.when.status:
                continue
        for ref in step.suggest:
            kind, _, name = ref.partition(":")
            if not any(s.kind == kind and s.ref == name for s in found):
                found.append(Suggestion(kind=kind, ref=name, note=step.note))
    return found


async def diagnose(
    runbook: Runbook, params: dict[str, Any], runner: ProbeRunner, *, run_id: str | None = None
) -> Diagnosis:
    """Run every check of `runbook` with validated `params`."""
    run_id = run_id or new_run_id()
    started = datetime.now(UTC)
    outcomes = await run_checks(runbook, list(runbook.checks), params, runner, run_id)
    return Diagnosis(
        run_id=run_id,
        runbook_id=runbook.id,
        runbook_version=runbook.version,
        title=runbook.title,
        params=params,
        overall=worst([o.status for o in outcomes]),
        started_at=started,
        finished_at=datetime.now(UTC),
        checks=outcomes,
        suggestions=suggestions_for(runbook, outcomes),
    )

"""Running a runbook's diagnosis: all checks at once, each within its timeout, judged by thresholds.

A hanging target costs its check's timeout and nothing more; the runbook's deadline bounds the
whole. Checks fail closed: a probe that errors or times out, or a value the thresholds cannot judge
(absent, no series, not a number), is `unknown` with a reason a person can read — never `ok`. The
overall status is the worst check status (ok < warn < unknown < crit), and the follow-ups (`next`)
whose conditions match become suggestions.

A probe can say itself why its value is empty: a text value named `reason` (e.g. a SQL check's
"pg_stat_statements is not enabled: …" row) becomes the unknown check's reason.

One exception to "a failed probe is unknown": a check marked `unreachable: crit` (a reachability
check, `SELECT 1` or `PING`) is `crit` when its probe got no answer, with the probe's error as the
reason — for such a check not answering is the finding. A probe that never ran against its target
(a spec the registry cannot run, a failure of our own) says nothing about the target and stays
unknown.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from bot.probes import ProbeResult, ProbeRunner, PrometheusProbe
from bot.probes.base import ProbeSpecError
from bot.runbooks.model import Check, Runbook, Status

# Unknown outranks warn: "could not look" must not hide behind "a bit high", and a diagnosis with an
# unknown check is never ok overall. Crit still outranks it: what was seen red is the headline.
SEVERITY: dict[str, int] = {"ok": 0, "warn": 1, "unknown": 2, "crit": 3}


class CheckOutcome(BaseModel):
    check_id: str
    title: str
    status: Status
    value: Any = None
    threshold: str = ""
    unit: str = ""
    explain: str = ""
    # Why the status is `unknown` (the probe's error, "no series for `…`", "not a number: 'abc'"),
    # or why an `unreachable: crit` check is crit without a value (the probe's error).
    reason: str = ""
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
    # Advice that comes with no button (a decision tree's "PASS, keep monitoring").
    notes: list[str] = []

    @property
    def duration_ms(self) -> float:
        return (self.finished_at - self.started_at).total_seconds() * 1000

    def outcome(self, check_id: str) -> CheckOutcome | None:
        return next((c for c in self.checks if c.check_id == check_id), None)


def new_run_id() -> str:
    return "run-" + secrets.token_hex(5)


def worst(statuses: list[Status]) -> Status:
    """The overall status; no checks at all (a manual-only runbook) is ok — nothing was claimed."""
    return max(statuses, key=lambda s: SEVERITY[s]) if statuses else "ok"


def judge(check: Check, result: ProbeResult, *, probe_ran: bool = True) -> CheckOutcome:
    """The check's outcome from its probe's result. `probe_ran=False`: the probe never reached the
    point of asking the target (see the module docstring), so its failure is unknown whatever the
    check's `unreachable` says."""
    base = {
        "check_id": check.id,
        "title": check.title,
        "threshold": check.threshold_text(),
        "unit": check.unit,
        "explain": check.explain,
        "result": result,
    }
    if result.status != "ok":
        reason = result.error or ("timed out" if result.status == "timeout" else "the probe failed")
        status: Status = "crit" if probe_ran and check.unreachable == "crit" else "unknown"
        return CheckOutcome(status=status, reason=reason, **base)
    if check.value is None:
        return CheckOutcome(status="ok", **base)
    if check.value not in result.values:
        said = result.values.get("reason")
        # A probe that did not run its query (an extension missing) says why; otherwise the name is off.
        reason = (
            said if isinstance(said, str) and said else f"the probe returned no value named {check.value}"
        )
        return CheckOutcome(status="unknown", reason=reason, **base)
    observed = result.values[check.value]
    why = check.unjudgeable(observed)
    if why is not None:
        reason = _no_value(check, result) if observed is None else why
        return CheckOutcome(status="unknown", value=observed, reason=reason, **base)
    return CheckOutcome(status=check.judge(observed), value=observed, **base)


def _no_value(check: Check, result: ProbeResult) -> str:
    """Why a value to judge is empty, as specifically as the probe lets us say."""
    said = result.values.get("reason")
    if isinstance(said, str) and said.strip():
        return said.strip()
    if isinstance(check.probe, PrometheusProbe) and result.values.get("series") == 0:
        return f"no series for `{result.values.get('query') or check.probe.query}`"
    return "no value"


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
            return judge(check, result, probe_ran=False)
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
        # Cut off by the deadline: the target did not answer in time. An exception: our own failure.
        cut_off = task in pending
        reason = (
            f"cut off by the runbook deadline of {runbook.deadline_s:g}s"
            if cut_off
            else f"failed: {type(task.exception()).__name__}"
        )
        result = ProbeResult(status="timeout", values={}, latency_ms=runbook.deadline_s * 1000, error=reason)
        outcomes.append(judge(check, result, probe_ran=cut_off))
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    return outcomes


def suggestions_for(runbook: Runbook, outcomes: list[CheckOutcome]) -> list[Suggestion]:
    """What the runbook's `next` suggests for these outcomes (in order, up to a step that stops)."""
    observed = {o.check_id: (o.status, o.value) for o in outcomes}
    found: list[Suggestion] = []
    for step in runbook.follow_ups(observed, worst([o.status for o in outcomes])):
        for ref in step.suggest:
            kind, _, name = ref.partition(":")
            if not any(s.kind == kind and s.ref == name for s in found):
                found.append(Suggestion(kind=kind, ref=name, note=step.note))
    return found


def notes_for(runbook: Runbook, outcomes: list[CheckOutcome]) -> list[str]:
    """The notes of matching `next` steps that suggest nothing: advice with no button."""
    observed = {o.check_id: (o.status, o.value) for o in outcomes}
    steps = runbook.follow_ups(observed, worst([o.status for o in outcomes]))
    return [step.note for step in steps if step.note and not step.suggest]


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
        notes=notes_for(runbook, outcomes),
    )

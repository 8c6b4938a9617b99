"""The two-person rule as a service, Slack-agnostic: request, approve, deny, cancel, run, expire.

Each decision is split the way StackStorm's inquiry service does it: check (does the request
exist and is it open), authorize (is this person allowed), validate (is it still exactly what
was requested), then respond (one compare-and-set transition). A refusal is a `Refused` with a
code and a sentence for the person; every refusal and every transition is written to the audit log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from psycopg_pool import AsyncConnectionPool

from bot import audit
from bot.actions import ActionExecutor, ActionResult
from bot.approvals.binding import NOTHING_NOW, affects_nothing, binding_hash, preview_digest, preview_drift
from bot.approvals.policy import Policy, Rule
from bot.approvals.store import ApprovalRecord, ApprovalStore, NewRequest
from bot.coordination import Coordinator, LockUnavailable
from bot.errors import UserError
from bot.logs import get_logger
from bot.probes import ProbeResult, ProbeRunner
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.engine import run_checks
from bot.runbooks.model import Action, Runbook

log = get_logger(__name__)

Membership = Callable[[str, list[str]], Awaitable[bool]]
# True while the channel belongs to an open, security-sensitive incident.
FreezeCheck = Callable[[str], Awaitable[bool]]
# (channel, kind, text, actor, key): lets the incident in that channel, if any, add it to its timeline.
EventHook = Callable[[str, str, str, str, str], Awaitable[None]]

TIMELINE_WORTHY = {
    "approval.requested": "Approval requested",
    "approval.approved": "Approved",
    "approval.denied": "Denied",
    "approval.cancelled": "Request cancelled",
    "approval.expired": "Request expired",
    "approval.succeeded": "Action succeeded",
    "approval.failed": "Action failed",
    "approval.interrupted": "Action interrupted",
}

# A request is approved and started in the same handler, milliseconds apart; one still only
# approved after this long was left behind by a process that died in between.
APPROVED_GRACE_S = 30.0
RUNNING_SLACK_S = 10.0
NOT_RUN_NOTE = (
    "Not run: opsbot stopped between the approval and the run. Nothing was changed; "
    "request it again if it is still needed."
)
INTERRUPTED_NOTE = (
    "Interrupted: opsbot stopped while this was running, so the outcome is unknown. "
    "Check the target before requesting it again."
)


class Refused(UserError):
    """A request or decision that is not allowed; `message` is shown to the person, `code` audited."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ApprovalService:
    def __init__(
        self,
        *,
        pool: AsyncConnectionPool,
        catalogue: Catalogue,
        policy: Policy,
        runner: ProbeRunner,
        executor: ActionExecutor,
        coordinator: Coordinator,
        is_member: Membership,
        restarts_frozen: FreezeCheck,
        on_event: EventHook,
    ) -> None:
        self.store = ApprovalStore(pool)
        self._pool = pool
        self.catalogue = catalogue
        self._policy = policy
        self._runner = runner
        self._executor = executor
        self._coordinator = coordinator
        self._is_member = is_member
        self._restarts_frozen = restarts_frozen
        self._on_event = on_event

    # --- lookups -----------------------------------------------------------------------------

    def resolve(self, runbook_id: str, action_id: str) -> tuple[Runbook, Action]:
        runbook = self.catalogue.get(runbook_id)
        action = runbook.action(action_id) if runbook else None
        if runbook is None or action is None:
            raise Refused("unknown_action", f"`{runbook_id}:{action_id}` is not in the runbook catalogue.")
        return runbook, action

    def rule(self, runbook: Runbook, action: Action) -> Rule:
        return self._policy.rule_for(runbook.id, action.id, action.risk, action.needs_approvals)

    async def _audit(
        self,
        actor: str,
        name: str,
        outcome: str,
        record: ApprovalRecord | None,
        channel: str | None,
        **details: Any,
    ) -> None:
        event = audit.AuditEvent(
            actor=actor,
            action=name,
            outcome=outcome,
            subject=record.id if record else None,
            channel=channel,
            details={
                **(
                    {
                        "hash": record.binding_hash,
                        "runbook": record.runbook_id,
                        "action_id": record.action_id,
                        "target": record.target,
                        "params": record.params,
                    }
                    if record
                    else {}
                ),
                **details,
            },
        )
        async with self._pool.connection() as conn:
            await audit.append(conn, event)
        if record is not None and name in TIMELINE_WORTHY:
            text = f"{TIMELINE_WORTHY[name]}: {record.action_id} on {record.target} ({record.id})"
            await self._on_event(record.channel, name, text, actor, f"{record.id}:{name}:{actor}")

    # --- request ---------------------------------------------------------------------------------

    async def may_request(
        self, runbook: Runbook, action: Action, user: str, channel_id: str, channel_name: str | None
    ) -> Rule:
        """Authorize a request before asking for a reason; raises `Refused`."""
        if action.step.kind == "manual":
            raise Refused("manual_action", "That action is a manual checklist; there is nothing to approve.")
        if action.restarts_service and await self._restarts_frozen(channel_id):
            await self._audit(
                user,
                "approval.request_refused",
                "security_freeze",
                None,
                channel_id,
                runbook=runbook.id,
                action_id=action.id,
            )
            raise Refused(
                "security_freeze",
                "This incident is security-sensitive: do NOT restart services "
                "(it destroys evidence). Restart-type actions are frozen until it is resolved.",
            )
        rule = self.rule(runbook, action)
        if rule.requesters and not await self._is_member(user, list(rule.requesters)):
            await self._audit(
                user,
                "approval.request_refused",
                "not_requester",
                None,
                channel_id,
                runbook=runbook.id,
                action_id=action.id,
            )
            raise Refused("not_requester", "You are not in a group allowed to request this action.")
        if rule.channels and channel_id not in rule.channels and (channel_name or "") not in rule.channels:
            where = ", ".join(f"#{c}" for c in rule.channels)
            await self._audit(
                user,
                "approval.request_refused",
                "wrong_channel",
                None,
                channel_id,
                runbook=runbook.id,
                action_id=action.id,
            )
            raise Refused("wrong_channel", f"This action can only be requested in {where}.")
        return rule

    async def preview(self, action: Action, params: dict[str, Any], run_id: str) -> ProbeResult | None:
        if action.preview is None:
            return None
        return await self._runner.run(
            action.preview, params, run_id=run_id, timeout_s=min(action.timeout_s, 10.0)
        )

    async def request(
        self,
        runbook: Runbook,
        action: Action,
        params: dict[str, Any],
        *,
        reason: str,
        requester: str,
        channel: str,
        channel_name: str | None,
        thread_ts: str | None,
    ) -> ApprovalRecord:
        rule = await self.may_request(runbook, action, requester, channel, channel_name)
        preview = await self.preview(action, params, run_id=f"preview-{runbook.id}")
        if action.risk in ("high", "critical") and affects_nothing(preview):
            await self._audit(
                requester,
                "approval.request_refused",
                "affects_nothing",
                None,
                channel,
                runbook=runbook.id,
                action_id=action.id,
                params=params,
            )
            raise Refused(
                "affects_nothing",
                f"{NOTHING_NOW}: the preview of {action.title} found no rows, so nothing was requested. "
                "Request it again when there is something for it to act on.",
            )
        record = await self.store.create(
            _new_request(runbook, action, params, preview, rule, reason, requester, channel, thread_ts)
        )
        await self._audit(
            requester,
            "approval.requested",
            "pending",
            record,
            channel,
            reason=reason,
            approvals_needed=rule.approvals,
        )
        return record

    # --- decisions ---------------------------------------------------------------------------------

    async def _open(self, request_id: str, user: str, channel: str) -> tuple[ApprovalRecord, Runbook, Action]:
        """check: the request exists, is still open, and this is the channel it was requested in."""
        record = await self.store.get(request_id)
        if record is None:
            await self._audit(
                user, "approval.refused", "unknown_request", None, channel, request_id=request_id[:40]
            )
            raise Refused("unknown_request", "There is no such approval request.")
        if record.channel != channel:
            await self._audit(user, "approval.refused", "wrong_channel", record, channel)
            raise Refused(
                "wrong_channel", "This is not the channel the request was made in; use the original card."
            )
        if record.state not in ("requested", "pending"):
            await self._audit(user, "approval.refused", f"already_{record.state}", record, channel)
            raise Refused(f"already_{record.state}", f"{record.id} is already {record.state}.")
        runbook, action = self.resolve(record.runbook_id, record.action_id)
        return record, runbook, action

    async def approve(self, request_id: str, user: str, channel: str) -> ApprovalRecord:
        record, runbook, action = await self._open(request_id, user, channel)
        refusal = await self._why_not_approver(record, runbook, action, user)
        if refusal is not None:
            await self._audit(user, "approval.refused", refusal.code, record, channel)
            raise refusal
        decided = await self.store.approve(request_id, user)
        if decided is None:
            current = await self.store.get(request_id)
            code = (
                "expired"
                if current and current.state in ("requested", "pending")
                else f"already_{current.state if current else 'gone'}"
            )
            await self._audit(user, "approval.refused", code, record, channel)
            message = (
                "The request expired before your approval."
                if code == "expired"
                else (f"{request_id} was already decided ({current.state if current else 'gone'}).")
            )
            raise Refused(code, message)
        outcome = (
            "approved"
            if decided.state == "approved"
            else f"approval {len(decided.approvers)} of {decided.required_approvals}"
        )
        await self._audit(user, "approval.approved", outcome, decided, channel)
        return decided

    async def _why_not_approver(
        self, record: ApprovalRecord, runbook: Runbook, action: Action, user: str
    ) -> Refused | None:
        """authorize + validate: someone else, an approver now, and still exactly what was requested."""
        if user == record.requester:
            return Refused("own_request", "You cannot approve your own request: a second person has to.")
        if user in record.approvers:
            return Refused("already_approved_by_you", "You have already approved this request.")
        rule = self.rule(runbook, action)
        if not await self._is_member(user, list(rule.approvers)):
            return Refused("not_approver", "You are not in the approver group for this action.")
        current = binding_hash(
            runbook_id=runbook.id,
            version=runbook.version,
            action_id=action.id,
            target=getattr(action.step, "target", None),
            params=record.params,
            preview=record.preview_digest,
        )
        if current != record.binding_hash:
            return Refused(
                "changed", "The runbook or the request changed since it was made; request it again."
            )
        if action.preview is not None:
            now = await self.preview(action, record.params, run_id=f"recheck-{record.id}")
            before = ProbeResult.model_validate(record.preview) if record.preview else None
            drift = preview_drift(before, now, action.preview_margin)
            if drift is not None:
                return Refused(
                    "preview_changed", f"Not approved: {drift}. Request it again to see what it would do now."
                )
        return None

    async def deny(self, request_id: str, user: str, channel: str) -> ApprovalRecord:
        record, runbook, action = await self._open(request_id, user, channel)
        if user == record.requester:
            raise Refused("own_request", "Cancel your own request instead of denying it.")
        if not await self._is_member(user, list(self.rule(runbook, action).approvers)):
            await self._audit(user, "approval.refused", "not_approver", record, channel)
            raise Refused("not_approver", "Only an approver can deny a request.")
        denied = await self.store.deny(request_id, user)
        if denied is None:
            raise Refused("already_decided", f"{request_id} was already decided.")
        await self._audit(user, "approval.denied", "denied", denied, channel)
        return denied

    async def cancel(self, request_id: str, user: str, channel: str) -> ApprovalRecord:
        record, _, _ = await self._open(request_id, user, channel)
        if user != record.requester:
            await self._audit(user, "approval.refused", "not_requester", record, channel)
            raise Refused("not_requester", "Only the person who asked can cancel a request.")
        cancelled = await self.store.cancel(request_id, user)
        if cancelled is None:
            raise Refused("already_decided", f"{request_id} was already decided.")
        await self._audit(user, "approval.cancelled", "cancelled", cancelled, channel)
        return cancelled

    async def expire_due(self) -> list[ApprovalRecord]:
        expired = await self.store.expire_due()
        for record in expired:
            await self._audit("opsbot", "approval.expired", "expired", record, record.channel)
        return expired

    async def recover_stranded(self) -> list[ApprovalRecord]:
        """Give requests a process died holding a definite, final state; never run them again.

        approved but never started: nothing ran, so it is marked not run. running past the longest
        a live run can take (verify checks, lock wait, the step's timeout): the outcome is unknown,
        so it is marked interrupted for a person to check. Either way it never runs again.
        """
        recovered: list[ApprovalRecord] = []
        for record, age in await self.store.stranded():
            if record.state == "approved":
                if age < APPROVED_GRACE_S:
                    continue
                note = NOT_RUN_NOTE
            else:
                if age < self._longest_run(record):
                    continue
                note = INTERRUPTED_NOTE
            done = await self.store.interrupt(record.id, record.state, note)
            if done is not None:
                await self._audit("opsbot", "approval.interrupted", record.state, done, done.channel)
                recovered.append(done)
        return recovered

    def _longest_run(self, record: ApprovalRecord) -> float:
        try:
            runbook, action = self.resolve(record.runbook_id, record.action_id)
        except Refused:
            return RUNNING_SLACK_S
        return runbook.deadline_s + min(action.timeout_s, 60) + action.timeout_s + RUNNING_SLACK_S

    # --- execution ---------------------------------------------------------------------------------

    async def verify_values(
        self, runbook: Runbook, action: Action, params: dict[str, Any], run_id: str
    ) -> dict[str, Any]:
        checks = [c for c in runbook.checks if c.id in action.verify]
        if not checks:
            return {}
        outcomes = await run_checks(runbook, checks, params, self._runner, run_id)
        return {
            o.check_id: {"title": o.title, "value": o.value, "status": o.status, "unit": o.unit}
            for o in outcomes
        }

    async def execute(self, request_id: str) -> ApprovalRecord | None:
        """approved → running → succeeded|failed; returns None when another process runs it."""
        record = await self.store.start(request_id)
        if record is None:
            return None
        runbook, action = self.resolve(record.runbook_id, record.action_id)
        await self._audit("opsbot", "approval.started", "running", record, record.channel)
        before = await self.verify_values(runbook, action, record.params, f"{record.id}-before")
        target = record.target or "local"
        try:
            async with self._coordinator.lock(
                f"target:{target}", ttl_seconds=action.timeout_s + 30, wait_seconds=min(action.timeout_s, 60)
            ):
                result = await self._executor.run(
                    action.step, record.params, run_id=record.id, timeout_s=action.timeout_s
                )
        except LockUnavailable:
            result = ActionResult(
                status="failed",
                values={},
                latency_ms=0.0,
                error=f"another action was still running on {target}",
            )
        finished = await self.store.finish(
            record.id,
            succeeded=result.status == "succeeded",
            result=result.model_dump(mode="json"),
            before=before,
        )
        assert finished is not None
        await self._audit(
            "opsbot",
            f"approval.{finished.state}",
            result.status,
            finished,
            finished.channel,
            error=result.error,
            values=result.values,
        )
        after = await self.verify_values(runbook, action, record.params, f"{record.id}-after")
        if after:
            await self.store.record_after(record.id, after)
            finished = finished.model_copy(update={"after_values": after})
        return finished


def _new_request(
    runbook: Runbook,
    action: Action,
    params: dict[str, Any],
    preview: ProbeResult | None,
    rule: Rule,
    reason: str,
    requester: str,
    channel: str,
    thread_ts: str | None,
) -> NewRequest:
    """The request as stored: bound by hash to the exact action, parameters and previewed rows."""
    digest = preview_digest(preview)
    target = getattr(action.step, "target", None)
    return NewRequest(
        runbook_id=runbook.id,
        runbook_version=runbook.version,
        action_id=action.id,
        target=target,
        risk=action.risk,
        params=params,
        preview=preview.model_dump(mode="json") if preview else None,
        preview_digest=digest,
        binding_hash=binding_hash(
            runbook_id=runbook.id,
            version=runbook.version,
            action_id=action.id,
            target=target,
            params=params,
            preview=digest,
        ),
        reason=reason,
        requester=requester,
        channel=channel,
        thread_ts=thread_ts,
        required_approvals=rule.approvals,
        expiry_minutes=rule.expiry_minutes,
    )

"""The two-person rule in Slack: request an action (button or `/runbook run id:action`), give the
reason in a form, approve / deny / cancel on the approval card, run it once approved, `/approvals`,
and keep every approval card in step with its stored request (decisions, results, expiry, recovery).

`ApprovalService` decides (policy, state machine, execution); this desk is what people click.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from pydantic import BaseModel
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals.policy import Rule
from bot.approvals.store import ApprovalRecord
from bot.logs import get_logger
from bot.mrkdwn import escape
from bot.render.approval import (
    APPROVE,
    DENY,
    approval_card,
    approval_text,
    before_after,
    decision_receipt,
    history_blocks,
    pending_blocks,
    request_modal,
    result_text,
)
from bot.render.catalogue import approvals_wording
from bot.runbooks.buttons import ActionButton
from bot.runbooks.commands import ActionRequest
from bot.runbooks.model import Runbook
from bot.runbooks.params import validate_values
from bot.services.approvals import ApprovalService, Refused
from bot.slack.asker import Asker, tell
from bot.slack.client import InstrumentedWebClient
from bot.slack.directory import Directory
from bot.slack.outbox import Outbox
from bot.slack.post import PostFailed, invite, post_message
from bot.slack.priority import Priority, serving

log = get_logger(__name__)

# True when the channel is an incident's own channel (approvers are invited into those only).
IncidentChannelCheck = Callable[[str], Awaitable[bool]]


class RequestContext(BaseModel):
    """What the request form carries through `private_metadata`."""

    runbook: str
    action: str
    params: dict[str, Any]
    channel: str
    channel_name: str | None = None
    thread_ts: str | None = None


def card_post_id(request_id: str) -> str:
    """The marker an approval card is posted with, to find it again if its ts was never stored."""
    return f"approval-card:{request_id}"


class ApprovalDesk:
    def __init__(
        self,
        service: ApprovalService,
        client: AsyncWebClient,
        outbox: Outbox,
        *,
        directory: Directory,
        is_incident_channel: IncidentChannelCheck,
    ) -> None:
        self.service = service
        self._client = client
        self._outbox = outbox
        self._directory = directory
        self._is_incident_channel = is_incident_channel

    def approvals_needed(self, runbook: Runbook) -> dict[str, int]:
        """How many approvals each of the runbook's actions needs under the policy (`/runbook show`)."""
        return {a.id: self.service.rule(runbook, a).approvals for a in runbook.actions}

    async def request(self, request: ActionRequest, asker: Asker) -> None:
        """Authorize the requester, then ask for the reason in a form (raises `Refused`)."""
        runbook, action = self.service.resolve(request.runbook_id, request.action_id)
        assert asker.channel is not None
        rule = await self.service.may_request(runbook, action, asker.user, asker.channel, asker.channel_name)
        context = RequestContext(
            runbook=runbook.id,
            action=action.id,
            params=request.params,
            channel=asker.channel,
            channel_name=asker.channel_name,
            thread_ts=asker.thread_ts,
        )
        view = request_modal(
            runbook, action, request.params, context.model_dump(), rule.approvals, rule.expiry_minutes
        )
        await self._client.views_open(trigger_id=asker.trigger_id, view=view)

    async def request_from_card(self, button: ActionButton, asker: Asker) -> None:
        """An action button on a diagnosis card: a manual checklist is shown, anything else requested."""
        _, action = button.target(self.service.catalogue)
        if action.step.kind == "manual":
            steps = "\n".join(f"☐ {escape(s)}" for s in action.step.steps)
            await tell(self._client, asker, f"*{escape(action.title)}* — do these by hand:\n{steps}")
            return
        await self.request(button.request(self.service.catalogue), asker)

    async def submit(self, context: RequestContext, reason: str, user: str) -> None:
        """The reason form was sent: store the request, post its card, tell the requester."""
        structlog.contextvars.bind_contextvars(runbook_id=context.runbook, slack_user=user)
        runbook, action = self.service.resolve(context.runbook, context.action)
        # The form's metadata came back from Slack: checked like a button's, by the parameter models.
        params = validate_values([*runbook.params, *action.params], context.params)
        record = await self.service.request(
            runbook,
            action,
            params,
            reason=reason,
            requester=user,
            channel=context.channel,
            channel_name=context.channel_name,
            thread_ts=context.thread_ts,
        )
        card = (approval_text(record, action), approval_card(record, runbook, action))
        try:
            ts = await post_message(self._client, record.channel, *card, post_id=card_post_id(record.id))
        except PostFailed as exc:
            await self.service.store.cancel(record.id, user)
            raise Refused("card_not_posted", f"I could not post the approval card ({exc.error}).") from None
        posted = await self.service.store.posted(record.id, ts) or record
        # Redrawn only if someone acted on the card before its ts was stored: chat.update is tier 3,
        # and its budget is what keeps alert cards current in a storm.
        if (approval_text(posted, action), approval_card(posted, runbook, action)) != card:
            await self.update_card(posted)
        await tell(
            self._client,
            Asker(user=user, channel=record.channel),
            f"Requested {record.id}: *{escape(action.title)}*. "
            f"{approvals_wording(record.required_approvals)} from someone else before it runs.",
        )
        # Calling the approvers is news for others, not the requester's answer (the card is): it
        # waits behind people's answers for the channel's one post a second.
        with serving(Priority.ANNOUNCE):
            await self._reach_approvers(posted, self.service.rule(runbook, action), action.title, ts)

    async def _reach_approvers(self, record: ApprovalRecord, rule: Rule, title: str, card_ts: str) -> None:
        """Mention the rule's approvers in the card's thread; in an incident channel, invite those
        who are not in it yet (a card nobody who may approve can see waits until it expires)."""
        mentions: list[str] = []
        members: set[str] = set()
        for principal in rule.approvers:
            if principal[:1] in ("U", "W") and principal.isupper():
                mentions.append(f"<@{principal}>")
                members.add(principal)
                continue
            group_id = await self._directory.group_id(principal)
            if group_id is None:
                log.warning("approver_group_unknown", request=record.id, group=principal)
                continue
            mentions.append(f"<!subteam^{group_id}>")
            members |= await self._directory.members(group_id)
        if await self._is_incident_channel(record.channel):
            for member in sorted(members - {record.requester}):
                await invite(self._client, record.channel, member)
        if not mentions:
            return
        try:
            await self._client.chat_postMessage(
                channel=record.channel,
                thread_ts=card_ts,
                text=f"{' '.join(mentions)} {record.id} waits for you: *{escape(title)}*. "
                f"{approvals_wording(record.required_approvals)} "
                f"from someone other than <@{record.requester}>.",
            )
        except SlackApiError as exc:
            log.warning("approvers_mention_failed", request=record.id, error=exc.response.get("error"))

    async def decide(self, kind: str, request_id: str, asker: Asker) -> None:
        """Approve, deny or cancel from the card; an approval that completes the quorum runs it."""
        structlog.contextvars.bind_contextvars(approval_id=request_id[:40], slack_user=asker.user)
        channel = asker.channel or ""
        if kind == APPROVE:
            record = await self.service.approve(request_id, asker.user, channel)
        elif kind == DENY:
            record = await self.service.deny(request_id, asker.user, channel)
        else:
            record = await self.service.cancel(request_id, asker.user, channel)
        await self.update_card(record)
        await tell(self._client, asker, decision_receipt(record))
        if record.state == "approved":
            await self._run_approved(record.id)

    async def _run_approved(self, request_id: str) -> None:
        finished = await self.service.execute(request_id)
        if finished is None:
            return
        await self.update_card(finished)
        thread = finished.message_ts
        # What ran and what changed must reach the channel even if Slack is down right now. The card
        # shows the outcome to whoever clicked; the thread's account is news, paced behind answers.
        with serving(Priority.ANNOUNCE):
            try:
                await self._outbox.post(finished.channel, result_text(finished), thread_ts=thread)
                comparison = before_after(finished)
                if comparison:
                    await self._outbox.post(finished.channel, comparison, thread_ts=thread)
            except SlackApiError as exc:
                error = exc.response.get("error")
                log.warning("approval_result_post_failed", request=finished.id, error=error)

    async def list_pending(self, asker: Asker) -> None:
        """`/approvals`: what waits in this channel, with Cancel for the asker's own requests."""
        pending = await self.service.store.pending_in(asker.channel or "")
        if not pending:
            await tell(self._client, asker, "No approval requests are waiting here.")
            return
        await tell(self._client, asker, f"{len(pending)} waiting", pending_blocks(pending, asker.user))

    async def history(self, asker: Asker) -> None:
        """`/approvals history`: requests decided in this channel, newest first, with who decided."""
        decided = await self.service.store.decided_in(asker.channel or "")
        if not decided:
            await tell(self._client, asker, "No approval requests have been decided here yet.")
            return
        await tell(self._client, asker, f"{len(decided)} decided, newest first", history_blocks(decided))

    async def update_card(self, record: ApprovalRecord) -> ApprovalRecord:
        """Redraw the approval card from the stored request (state, approvers, outcome); returns the
        request with the card's ts if it is known by now."""
        if record.message_ts is None:
            record = await self._with_card_ts(record)
            if record.message_ts is None:
                return record
        runbook, action = self.service.resolve(record.runbook_id, record.action_id)
        try:
            await self._client.chat_update(
                channel=record.channel,
                ts=record.message_ts,
                text=approval_text(record, action),
                blocks=approval_card(record, runbook, action),
            )
        except SlackApiError as exc:
            log.warning("approval_card_update_failed", request=record.id, error=exc.response.get("error"))
        return record

    async def _with_card_ts(self, record: ApprovalRecord) -> ApprovalRecord:
        # Decided before the card's ts was stored: the stored row knows it by now, if anyone does;
        # if not (the process died between posting the card and storing its ts), Slack does.
        stored = await self.service.store.get(record.id) or record
        if stored.message_ts is not None or not isinstance(self._client, InstrumentedWebClient):
            return stored
        try:
            found = await self._client.find_post(record.channel, None, card_post_id(record.id))
        except SlackApiError as exc:
            log.warning("approval_card_lookup_failed", request=record.id, error=exc.response.get("error"))
            return stored
        if found is None:
            return stored
        log.info("approval_card_found", request=record.id, ts=found["ts"])
        return await self.service.store.posted(record.id, str(found["ts"])) or stored

    async def expire_due(self) -> int:
        """Mark requests past their expiry and redraw their cards (expiry itself is enforced at approval)."""
        expired = await self.service.expire_due()
        for record in expired:
            await self.update_card(record)
        return len(expired)

    async def recover_stranded(self) -> int:
        """Settle requests a dead process left approved or running, and say so on card and thread."""
        recovered = await self.service.recover_stranded()
        for stranded in recovered:
            record = await self.update_card(stranded)
            if record.message_ts is None:
                continue
            try:
                await self._client.chat_postMessage(
                    channel=record.channel, thread_ts=record.message_ts, text=f"⚠️ {record.id}: {record.note}"
                )
            except SlackApiError as exc:
                log.warning(
                    "approval_recovery_post_failed", request=record.id, error=exc.response.get("error")
                )
        return len(recovered)

"""Keeping approval cards in Slack in step with the stored request (decisions, results, expiry)."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals.service import ApprovalService
from bot.approvals.store import ApprovalRecord
from bot.logs import get_logger
from bot.render.approval import approval_card, approval_text

log = get_logger(__name__)


async def update_card(service: ApprovalService, client: AsyncWebClient, record: ApprovalRecord) -> None:
    """Redraw the approval card from the stored request (state, approvers, outcome)."""
    if record.message_ts is None:
        # Decided before the card's ts was stored: the stored row knows it by now, if anyone does.
        record = await service.store.get(record.id) or record
        if record.message_ts is None:
            return
    runbook, action = service.resolve(record.runbook_id, record.action_id)
    try:
        await client.chat_update(
            channel=record.channel,
            ts=record.message_ts,
            text=approval_text(record, action),
            blocks=approval_card(record, runbook, action),
        )
    except SlackApiError as exc:
        log.warning("approval_card_update_failed", request=record.id, error=exc.response.get("error"))


async def expire_due(service: ApprovalService, client: AsyncWebClient) -> int:
    """Mark requests past their expiry and redraw their cards (expiry itself is enforced at approval)."""
    expired = await service.expire_due()
    for record in expired:
        await update_card(service, client, record)
    return len(expired)


async def recover_stranded(service: ApprovalService, client: AsyncWebClient) -> int:
    """Settle requests a dead process left approved or running, and say so on card and thread."""
    recovered = await service.recover_stranded()
    for record in recovered:
        await update_card(service, client, record)
        if record.message_ts is None:
            continue
        try:
            await client.chat_postMessage(
                channel=record.channel, thread_ts=record.message_ts, text=f"⚠️ {record.id}: {record.note}"
            )
        except SlackApiError as exc:
            log.warning("approval_recovery_post_failed", request=record.id, error=exc.response.get("error"))
    return len(recovered)

"""Keeping approval cards in Slack in step with the stored request (decisions, results, expiry)."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals.store import ApprovalRecord
from bot.logs import get_logger
from bot.render.approval import approval_card, approval_text
from bot.services.approvals import ApprovalService
from bot.slack.client import InstrumentedWebClient

log = get_logger(__name__)


async def update_card(
    service: ApprovalService, client: AsyncWebClient, record: ApprovalRecord
) -> ApprovalRecord:
    """Redraw the approval card from the stored request (state, approvers, outcome); returns the
    request with the card's ts if it is known by now."""
    if record.message_ts is None:
        record = await _with_card_ts(service, client, record)
        if record.message_ts is None:
            return record
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
    return record


def card_post_id(request_id: str) -> str:
    """The marker an approval card is posted with, to find it again if its ts was never stored."""
    return f"approval-card:{request_id}"


async def _with_card_ts(
    service: ApprovalService, client: AsyncWebClient, record: ApprovalRecord
) -> ApprovalRecord:
    # Decided before the card's ts was stored: the stored row knows it by now, if anyone does;
    # if not (the process died between posting the card and storing its ts), Slack does.
    stored = await service.store.get(record.id) or record
    if stored.message_ts is not None or not isinstance(client, InstrumentedWebClient):
        return stored
    try:
        found = await client.find_post(record.channel, None, card_post_id(record.id))
    except SlackApiError as exc:
        log.warning("approval_card_lookup_failed", request=record.id, error=exc.response.get("error"))
        return stored
    if found is None:
        return stored
    log.info("approval_card_found", request=record.id, ts=found["ts"])
    return await service.store.posted(record.id, str(found["ts"])) or stored


async def expire_due(service: ApprovalService, client: AsyncWebClient) -> int:
    """Mark requests past their expiry and redraw their cards (expiry itself is enforced at approval)."""
    expired = await service.expire_due()
    for record in expired:
        await update_card(service, client, record)
    return len(expired)


async def recover_stranded(service: ApprovalService, client: AsyncWebClient) -> int:
    """Settle requests a dead process left approved or running, and say so on card and thread."""
    recovered = await service.recover_stranded()
    for stranded in recovered:
        record = await update_card(service, client, stranded)
        if record.message_ts is None:
            continue
        try:
            await client.chat_postMessage(
                channel=record.channel, thread_ts=record.message_ts, text=f"⚠️ {record.id}: {record.note}"
            )
        except SlackApiError as exc:
            log.warning("approval_recovery_post_failed", request=record.id, error=exc.response.get("error"))
    return len(recovered)

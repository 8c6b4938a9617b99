"""The two-person rule in Slack: request an action (button or `/runbook run id:action`), give a
reason in a modal, approve / deny / cancel on the approval card, and `/approvals`.

Every listener acks first; the decision and the action run in tracked tasks. Refusals go back to
the person who clicked as an ephemeral message; nothing else changes.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands import CommandCatalogue, SlashCommand, Subcommand
from bot.logs import get_logger
from bot.mrkdwn import escape
from bot.render.approval import (
    APPROVE,
    CANCEL,
    DENY,
    REASON_BLOCK,
    REASON_INPUT,
    REQUEST_VIEW,
    approval_card,
    approval_text,
    before_after,
    request_modal,
    result_text,
)
from bot.render.diagnosis import REQUEST_ACTION
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.commands import ActionRequest, bind_action
from bot.runbooks.params import to_words
from bot.runtime import Runtime
from bot.services.approval_cards import card_post_id, update_card
from bot.services.approvals import ApprovalService, Refused
from bot.slack.post import PostFailed, post_message

log = get_logger(__name__)

APPROVALS = SlashCommand(
    command="/approvals",
    description="Approval requests waiting in this channel",
    usage_hint="[list]",
    subcommands=[Subcommand(name="list", usage="", summary="pending requests here; cancel your own")],
)
SCOPES = ("usergroups:read", "chat:write")
EVENTS: tuple[str, ...] = ()


def slash_commands(runbooks: Catalogue) -> list[SlashCommand]:
    return [APPROVALS]


class ActionButton(BaseModel):
    runbook: str
    action: str
    params: dict[str, Any] = {}


class RequestContext(BaseModel):
    """What the request modal carries through `private_metadata`."""

    runbook: str
    action: str
    params: dict[str, Any]
    channel: str
    channel_name: str | None = None
    thread_ts: str | None = None


async def refuse(client: AsyncWebClient, channel: str, user: str, message: str) -> None:
    """Tell only the person who clicked or typed why nothing happened."""
    try:
        await client.chat_postEphemeral(channel=channel, user=user, text=message)
    except SlackApiError as exc:
        log.warning("ephemeral_failed", error=exc.response.get("error"))


async def open_request_modal(
    service: ApprovalService,
    request: ActionRequest,
    trigger_id: str,
    client: AsyncWebClient,
    *,
    user: str,
    channel: str,
    channel_name: str | None,
    thread_ts: str | None,
) -> None:
    """Authorize the requester, then ask for the reason in a modal (raises `Refused`)."""
    runbook, action = service.resolve(request.runbook_id, request.action_id)
    rule = await service.may_request(runbook, action, user, channel, channel_name)
    context = RequestContext(
        runbook=runbook.id,
        action=action.id,
        params=request.params,
        channel=channel,
        channel_name=channel_name,
        thread_ts=thread_ts,
    )
    view = request_modal(
        runbook, action, request.params, context.model_dump(), rule.approvals, rule.expiry_minutes
    )
    await client.views_open(trigger_id=trigger_id, view=view)


async def request_from_command(
    service: ApprovalService, request: ActionRequest, body: dict[str, Any], client: AsyncWebClient
) -> None:
    """`/runbook run <runbook>:<action> …`: same path as the card's button."""
    try:
        await open_request_modal(
            service,
            request,
            body["trigger_id"],
            client,
            user=body["user_id"],
            channel=body["channel_id"],
            channel_name=body.get("channel_name"),
            thread_ts=None,
        )
    except Refused as exc:
        await refuse(client, body["channel_id"], body["user_id"], exc.message)


def register(app: AsyncApp, runtime: Runtime, catalogue: CommandCatalogue) -> None:
    service = runtime.approvals

    @app.action(re.compile(rf"^{REQUEST_ACTION}:\d+$"))
    async def action_button(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        user, channel = body["user"]["id"], body["channel"]["id"]
        try:
            button = ActionButton.model_validate_json(body["actions"][0]["value"])
            runbook, action = service.resolve(button.runbook, button.action)
            if action.step.kind == "manual":
                steps = "\n".join(f"☐ {escape(s)}" for s in action.step.steps)
                await respond(
                    response_type="ephemeral",
                    replace_original=False,
                    text=f"*{escape(action.title)}* — do these by hand:\n{steps}",
                )
                return
            bound = bind_action(
                runbook, action.id, to_words([*runbook.params, *action.params], button.params)
            )
            if not isinstance(bound, ActionRequest):
                raise Refused("bad_params", bound.text)
            message = body.get("message") or {}
            await open_request_modal(
                service,
                bound,
                body["trigger_id"],
                client,
                user=user,
                channel=channel,
                channel_name=(body.get("channel") or {}).get("name"),
                thread_ts=message.get("thread_ts") or message.get("ts"),
            )
        except (ValidationError, KeyError, IndexError):
            await refuse(client, channel, user, "That button no longer works.")
        except Refused as exc:
            await refuse(client, channel, user, exc.message)

    @app.view(REQUEST_VIEW)
    async def request_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        reason = str(view["state"]["values"][REASON_BLOCK][REASON_INPUT].get("value") or "").strip()
        if len(reason) < 5:
            await ack(
                response_action="errors", errors={REASON_BLOCK: "Say in a few words why this is needed."}
            )
            return
        await ack()
        context = RequestContext.model_validate_json(view["private_metadata"])
        runtime.tasks.spawn(submit(context, reason, body["user"]["id"], client), name="approval:request")

    async def submit(context: RequestContext, reason: str, user: str, client: AsyncWebClient) -> None:
        structlog.contextvars.bind_contextvars(runbook_id=context.runbook, slack_user=user)
        try:
            runbook, action = service.resolve(context.runbook, context.action)
            record = await service.request(
                runbook,
                action,
                context.params,
                reason=reason,
                requester=user,
                channel=context.channel,
                channel_name=context.channel_name,
                thread_ts=context.thread_ts,
            )
        except Refused as exc:
            await refuse(client, context.channel, user, exc.message)
            return
        try:
            ts = await post_message(
                client,
                record.channel,
                approval_text(record, action),
                approval_card(record, runbook, action),
                post_id=card_post_id(record.id),
            )
        except PostFailed as exc:
            await service.store.cancel(record.id, user)
            await refuse(client, context.channel, user, f"I could not post the approval card ({exc.error}).")
            return
        posted = await service.store.posted(record.id, ts) or record
        await update_card(service, client, posted)
        await refuse(
            client,
            record.channel,
            user,
            f"Requested {record.id}: *{escape(action.title)}*. It needs {record.required_approvals} "
            "approval(s) from someone else before it runs.",
        )

    async def decide(kind: str, request_id: str, user: str, channel: str, client: AsyncWebClient) -> None:
        structlog.contextvars.bind_contextvars(approval_id=request_id[:40], slack_user=user)
        try:
            if kind == APPROVE:
                record = await service.approve(request_id, user, channel)
            elif kind == DENY:
                record = await service.deny(request_id, user, channel)
            else:
                record = await service.cancel(request_id, user, channel)
        except Refused as exc:
            await refuse(client, channel, user, exc.message)
            return
        await update_card(service, client, record)
        if record.state == "approved":
            await run_approved(record.id, client)

    async def run_approved(request_id: str, client: AsyncWebClient) -> None:
        finished = await service.execute(request_id)
        if finished is None:
            return
        await update_card(service, client, finished)
        thread = finished.message_ts
        # What ran and what changed must reach the channel even if Slack is down right now.
        try:
            await runtime.outbox.post(finished.channel, result_text(finished), thread_ts=thread)
            comparison = before_after(finished)
            if comparison:
                await runtime.outbox.post(finished.channel, comparison, thread_ts=thread)
        except SlackApiError as exc:
            log.warning("approval_result_post_failed", request=finished.id, error=exc.response.get("error"))

    @app.action(re.compile(rf"^({APPROVE}|{DENY}|{CANCEL})$"))
    async def decision_button(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        clicked = body["actions"][0]
        runtime.tasks.spawn(
            decide(
                clicked["action_id"],
                str(clicked.get("value") or ""),
                body["user"]["id"],
                body["channel"]["id"],
                client,
            ),
            name="approval:decision",
        )

    @app.command(APPROVALS.command)
    async def approvals_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        channel, user = body["channel_id"], body["user_id"]
        pending = await service.store.pending_in(channel)
        if not pending:
            await app.client.chat_postEphemeral(
                channel=channel, user=user, text="No approval requests are waiting here."
            )
            return
        lines = [
            f"• *{r.id}* {escape(r.action_id)} on `{r.target}` ({r.runbook_id}) — asked by <@{r.requester}>, "
            f"{len(r.approvers)}/{r.required_approvals} approvals, expires {r.expires_at:%H:%M} UTC"
            for r in pending
        ]
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900]}}
        ]
        own = [r for r in pending if r.requester == user][:20]
        if own:
            blocks.append(
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": CANCEL,
                            "value": r.id,
                            "text": {"type": "plain_text", "text": f"Cancel {r.id}"},
                        }
                        for r in own
                    ],
                }
            )
        await app.client.chat_postEphemeral(
            channel=channel, user=user, text=f"{len(pending)} waiting", blocks=blocks
        )

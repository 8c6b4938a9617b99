"""The two-person rule's listeners: an action button on a diagnosis card, the reason form, the
approve / deny / cancel buttons, and `/approvals`. Each acks, then calls one `ApprovalDesk` method."""

from __future__ import annotations

import re

from bot.commands import SlashCommand, Subcommand, Usage
from bot.render.approval import APPROVE, CANCEL, DENY, REASON_BLOCK, REASON_INPUT, REQUEST_VIEW
from bot.render.diagnosis import REQUEST_ACTION
from bot.runbooks.buttons import ActionButton
from bot.runbooks.catalogue import Catalogue
from bot.services.approval_desk import RequestContext
from bot.slack.asker import Asker
from handlers.listening import Delivery, Listeners

APPROVALS = SlashCommand(
    command="/approvals",
    description="Approval requests in this channel: waiting, and decided",
    subcommands=[
        Subcommand(name="list", usage="list", summary="pending requests here; cancel your own"),
        Subcommand(
            name="history",
            usage="history",
            summary="decided requests here, newest first: outcome and who decided",
        ),
    ],
)
SCOPES = ("usergroups:read", "chat:write", "channels:write.invites")
EVENTS: tuple[str, ...] = ()


def slash_commands(runbooks: Catalogue) -> list[SlashCommand]:
    return [APPROVALS]


async def action_button(delivery: Delivery) -> None:
    await delivery.ack()
    button: ActionButton = ActionButton.from_value(delivery.action.get("value"))
    await delivery.services.approvals.request_from_card(button, delivery.asker)


async def request_submitted(delivery: Delivery) -> None:
    reason = str(delivery.view["state"]["values"][REASON_BLOCK][REASON_INPUT].get("value") or "").strip()
    if len(reason) < 5:
        await delivery.ack(
            response_action="errors", errors={REASON_BLOCK: "Say in a few words why this is needed."}
        )
        return
    await delivery.ack()
    context = RequestContext.model_validate_json(delivery.view["private_metadata"])
    user = delivery.asker.user
    delivery.spawn(
        delivery.services.approvals.submit(context, reason, user),
        name="approval:request",
        answer=Asker(user=user, channel=context.channel),
    )


async def decision_button(delivery: Delivery) -> None:
    await delivery.ack()
    kind, request_id = str(delivery.action["action_id"]), str(delivery.action.get("value") or "")
    delivery.spawn(
        delivery.services.approvals.decide(kind, request_id, delivery.asker), name="approval:decision"
    )


async def approvals_command(delivery: Delivery) -> None:
    picked = APPROVALS.pick(delivery.text, default="list")
    if isinstance(picked, Usage):
        await delivery.ack(response_type="ephemeral", text=picked.text)
        return
    await delivery.ack()
    verb, _ = picked
    if verb.name == "history":
        await delivery.services.approvals.history(delivery.asker)
    else:
        await delivery.services.approvals.list_pending(delivery.asker)


def listeners(runbooks: Catalogue) -> Listeners:
    return Listeners(
        commands={APPROVALS.command: approvals_command},
        actions=[
            (re.compile(rf"^{REQUEST_ACTION}:\d+$"), action_button),
            (re.compile(rf"^({APPROVE}|{DENY}|{CANCEL})$"), decision_button),
        ],
        views={REQUEST_VIEW: request_submitted},
    )

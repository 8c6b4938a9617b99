"""`/opsbot`: the bot's front page (help), the audit log for auditors, and the answer to a mention."""

from __future__ import annotations

import re

from bot.commands import SlashCommand, Subcommand, Usage
from bot.render.help import help_blocks, help_text
from bot.runbooks.catalogue import Catalogue
from handlers.listening import Delivery, Listeners

OPSBOT = SlashCommand(
    command="/opsbot",
    description="What opsbot can do, and how to use it",
    subcommands=[
        Subcommand(name="help", usage="help", summary="list every command and what it does"),
        Subcommand(
            name="audit",
            usage="audit <INC-…|REQ-…> · audit refusals",
            summary="auditors: the audit events of an incident or request, or the latest access refusals",
        ),
    ],
)
AUDIT_SUBJECT = re.compile(r"^(INC-\d{4}-\d{1,8}|REQ-\d{1,12})$")
# users:read and *:read: who is asking and what the channel is, for admission and the reading policy.
SCOPES = (
    "commands",
    "chat:write",
    "app_mentions:read",
    "usergroups:read",
    "users:read",
    "channels:read",
    "groups:read",
    "im:read",
    "mpim:read",
)
EVENTS = ("app_mention",)


def slash_commands(runbooks: Catalogue) -> list[SlashCommand]:
    return [OPSBOT]


async def opsbot_command(delivery: Delivery) -> None:
    picked = OPSBOT.pick(delivery.text, default="help")
    if isinstance(picked, Usage):
        await delivery.ack(response_type="ephemeral", text=picked.text)
        return
    verb, rest = picked
    if verb.name == "audit":
        subject = rest.strip().upper()
        if subject == "REFUSALS":
            await delivery.ack()
            await delivery.services.audit.refusals(delivery.asker)
            return
        if not AUDIT_SUBJECT.fullmatch(subject):
            usage = OPSBOT.answer(
                "Which incident or request? e.g. `/opsbot audit INC-2026-0001` or `REQ-0001`; "
                "`/opsbot audit refusals` lists who was refused what."
            )
            await delivery.ack(response_type="ephemeral", text=usage.text)
            return
        await delivery.ack()
        await delivery.services.audit.show(subject, delivery.asker)
        return
    commands = delivery.commands
    await delivery.ack(response_type="ephemeral", text=help_text(commands), blocks=help_blocks(commands))


async def mentioned(delivery: Delivery) -> None:
    event = delivery.body.get("event") or {}
    # Reply in the thread so a mention in a busy incident channel does not add noise to it.
    await delivery.services.client.chat_postMessage(
        channel=str(event.get("channel")),
        text="I'm opsbot. Type `/opsbot help` to see what I can run for you.",
        thread_ts=event.get("thread_ts") or event.get("ts"),
    )


def listeners(runbooks: Catalogue) -> Listeners:
    return Listeners(commands={OPSBOT.command: opsbot_command}, events={"app_mention": mentioned})

"""`/runbook`, the command families the catalogue defines (`/db`, `/cache`, `/health`, `/diagnose`…),
and the "Run <runbook>" buttons on diagnosis cards. Each acks at once; the diagnosis is delivered by
`DiagnosisService.deliver` in a tracked task, into the channel or the clicked card's thread.
"""

from __future__ import annotations

import re

from bot.commands import SlashCommand, Usage
from bot.mrkdwn import escape
from bot.render.catalogue import list_blocks, show_blocks
from bot.render.diagnosis import RUN_RUNBOOK
from bot.runbooks.buttons import RunButton
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.commands import (
    RUNBOOK,
    ActionRequest,
    ListRunbooks,
    RunRequest,
    ShowRunbook,
    family_commands,
    parse_family,
    parse_runbook_command,
)
from handlers.listening import Delivery, Listeners

SCOPES = ("commands", "chat:write", "channels:join", "files:write")
EVENTS: tuple[str, ...] = ()


def slash_commands(runbooks: Catalogue) -> list[SlashCommand]:
    return [RUNBOOK, *family_commands(runbooks)]


async def _run(delivery: Delivery, request: RunRequest | Usage) -> None:
    if isinstance(request, Usage):
        await delivery.ack(response_type="ephemeral", text=request.text)
        return
    catalogue = delivery.services.catalogue
    title = catalogue.runbooks[request.runbook_id].title
    await delivery.ack(
        response_type="ephemeral", text=f"Running *{escape(title)}*… the result will be posted here."
    )
    _deliver(delivery, request)


def _deliver(delivery: Delivery, request: RunRequest, thread_ts: str | None = None) -> None:
    asker = delivery.asker
    work = delivery.services.diagnoses.deliver(
        request, channel=asker.channel or asker.user, asker=asker, thread_ts=thread_ts
    )
    delivery.spawn(work, name=f"diagnosis:{request.runbook_id}")


async def runbook_command(delivery: Delivery) -> None:
    catalogue = delivery.services.catalogue
    parsed = parse_runbook_command(delivery.text, catalogue)
    if isinstance(parsed, ListRunbooks):
        await delivery.ack(
            response_type="ephemeral", text=f"{len(catalogue)} runbooks", blocks=list_blocks(catalogue)
        )
    elif isinstance(parsed, ShowRunbook):
        runbook = catalogue.runbooks[parsed.runbook_id]
        blocks = show_blocks(runbook, delivery.services.approvals.approvals_needed(runbook))
        await delivery.ack(response_type="ephemeral", text=runbook.title, blocks=blocks)
    elif isinstance(parsed, ActionRequest):
        await delivery.ack()
        await delivery.services.approvals.request(parsed, delivery.asker)
    else:
        await _run(delivery, parsed)


async def family_command(delivery: Delivery) -> None:
    family = str(delivery.body.get("command") or "").removeprefix("/")
    await _run(delivery, parse_family(family, delivery.text, delivery.services.catalogue))


async def run_button(delivery: Delivery) -> None:
    await delivery.ack()
    button: RunButton = RunButton.from_value(delivery.action.get("value"))
    request = button.request(delivery.services.catalogue)
    _deliver(delivery, request, thread_ts=delivery.asker.thread_ts)


def listeners(runbooks: Catalogue) -> Listeners:
    families = {command.command: family_command for command in family_commands(runbooks)}
    return Listeners(
        commands={RUNBOOK.command: runbook_command, **families},
        actions=[(re.compile(rf"^{RUN_RUNBOOK}:\d+$"), run_button)],
    )

"""Clicks on the action buttons of a diagnosis card (`request_action:*`).

Manual actions show their checklist to the person who clicked. Actions that change state need a
second person's approval; until the approval flow is enabled the click explains exactly what
would run and where, and runs nothing.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.commands import CommandCatalogue, SlashCommand
from bot.render.blocks import escape
from bot.render.catalogue import RISK_BADGE
from bot.render.diagnosis import REQUEST_ACTION
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.model import Action
from bot.runtime import Runtime

SCOPES: tuple[str, ...] = ()
EVENTS: tuple[str, ...] = ()


def slash_commands(runbooks: Catalogue) -> list[SlashCommand]:
    return []


class ActionButton(BaseModel):
    runbook: str
    action: str
    params: dict[str, Any] = {}


def describe(action: Action) -> str:
    step = action.step
    if step.kind == "manual":
        steps = "\n".join(f"☐ {escape(s)}" for s in step.steps)
        return f"*{escape(action.title)}* — do these by hand:\n{steps}"
    where = f"on `{step.target}`" if hasattr(step, "target") else ""
    return (
        f"*{escape(action.title)}* ({RISK_BADGE[action.risk]}) would run a {step.kind} step {where}.\n"
        f"{escape(action.summary)}\n"
        "It changes state, so it needs a second person's approval; the approval flow is not enabled "
        "in this build, so nothing was run."
    )


def register(app: AsyncApp, runtime: Runtime, catalogue: CommandCatalogue) -> None:
    @app.action(re.compile(rf"^{REQUEST_ACTION}:\d+$"))
    async def action_button(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        try:
            button = ActionButton.model_validate_json(body["actions"][0]["value"])
        except (ValidationError, KeyError, IndexError):
            await respond(
                response_type="ephemeral", replace_original=False, text="That button no longer works."
            )
            return
        runbook = runtime.runbooks.get(button.runbook)
        action = runbook.action(button.action) if runbook else None
        if action is None:
            await respond(
                response_type="ephemeral",
                replace_original=False,
                text="That action is no longer in the catalogue.",
            )
            return
        await respond(response_type="ephemeral", replace_original=False, text=describe(action))

"""From slash-command text to a typed request: which runbook, with which validated parameters.

Pure parsing, no I/O, so it runs on the ack path. Anything wrong becomes a `Usage` reply that
tells the person what they can type instead.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bot.mrkdwn import escape
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.model import Runbook
from bot.runbooks.params import ParamError, bind_params, split_words, usage_for

RUN_USAGE = "Usage: `/runbook run <id> [name=value …]` — `/runbook list` shows the ids."


class RunRequest(BaseModel):
    runbook_id: str
    params: dict[str, Any]


class ActionRequest(BaseModel):
    """A request to run a runbook action (`/runbook run db.connections:terminate_idle …`)."""

    runbook_id: str
    action_id: str
    params: dict[str, Any]


class Usage(BaseModel):
    """A short ephemeral answer: what went wrong (if anything) and how to use the command."""

    text: str


def runbook_usage(runbook: Runbook) -> str:
    invocation = runbook.command.text if runbook.command else f"/runbook run {runbook.id}"
    args = usage_for(list(runbook.params), runbook.command.positional if runbook.command else None)
    return f"`{invocation}{(' ' + args) if args else ''}` — {runbook.title}"


def family_usage(family: str, catalogue: Catalogue) -> str:
    lines = [f"*/{family}* runs these runbooks:"]
    lines += [f"• {runbook_usage(r)}" for r in catalogue.families().get(family, [])]
    lines.append("Parameters are `name=value`; `/runbook show <id>` explains a runbook.")
    return "\n".join(lines)


def _bind(runbook: Runbook, words: list[str]) -> RunRequest | Usage:
    positional = runbook.command.positional if runbook.command else []
    try:
        params = bind_params(list(runbook.params), words, positional)
    except ParamError as exc:
        return Usage(text=f"{escape(str(exc))}\nUsage: {runbook_usage(runbook)}")
    return RunRequest(runbook_id=runbook.id, params=params)


def parse_family(family: str, text: str, catalogue: Catalogue) -> RunRequest | Usage:
    """`/db connections idle_minutes=10` → the db.connections runbook with idle_minutes=600s…"""
    try:
        words = split_words(text)
    except ParamError as exc:
        return Usage(text=f"{escape(str(exc))}\n{family_usage(family, catalogue)}")
    if words and words[0].lower() in ("help", "-h", "--help"):
        return Usage(text=family_usage(family, catalogue))
    if words:
        runbook = catalogue.for_command(family, words[0].lower())
        if runbook is not None:
            return _bind(runbook, words[1:])
    default = catalogue.for_command(family, None)
    if default is not None:
        return _bind(default, words)
    if not words:
        return Usage(text=family_usage(family, catalogue))
    return Usage(text=f"I don't know `/{family} {escape(words[0][:40])}`.\n{family_usage(family, catalogue)}")


def bind_action(runbook: Runbook, action_id: str, words: list[str]) -> ActionRequest | Usage:
    """Parameters for an action: the runbook's and the action's own."""
    action = runbook.action(action_id)
    if action is None:
        names = ", ".join(a.id for a in runbook.actions) or "none"
        return Usage(
            text=f"`{escape(runbook.id)}` has no action `{escape(action_id[:40])}` (actions: {names})."
        )
    params = [*runbook.params, *action.params]
    try:
        values = bind_params(params, words)
    except ParamError as exc:
        usage = usage_for(params)
        return Usage(text=f"{escape(str(exc))}\nUsage: `/runbook run {runbook.id}:{action.id} {usage}`")
    return ActionRequest(runbook_id=runbook.id, action_id=action.id, params=values)


def parse_run(text: str, catalogue: Catalogue) -> RunRequest | ActionRequest | Usage:
    """`/runbook run <id> [name=value …]` or `/runbook run <id>:<action> …`, text after `run`."""
    try:
        words = split_words(text)
    except ParamError as exc:
        return Usage(text=f"{escape(str(exc))}\n{RUN_USAGE}")
    if not words:
        return Usage(text=RUN_USAGE)
    runbook_id, _, action_id = words[0].lower().partition(":")
    runbook = catalogue.get(runbook_id)
    if runbook is None:
        return Usage(text=f"No runbook `{escape(runbook_id[:60])}`. `/runbook list` shows them all.")
    if action_id:
        return bind_action(runbook, action_id, words[1:])
    return _bind(runbook, words[1:])

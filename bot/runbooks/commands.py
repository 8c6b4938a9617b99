"""From slash-command text to a typed request: which runbook, with which validated parameters.

Pure parsing, no I/O, so it runs on the ack path. Anything wrong becomes a `Usage` reply that
tells the person what they can type instead. The verb tables of `/runbook` and of the families the
catalogue defines (`/db`, `/cache`…) are built here, from the catalogue, and parsed through.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bot.commands import SlashCommand, Subcommand, Usage
from bot.mrkdwn import escape
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.model import Runbook
from bot.runbooks.params import ParamError, bind_params, split_words, usage_for

RUN_USAGE = "Usage: `/runbook run <id> [name=value …]` — `/runbook list` shows the ids."
FAMILY_DESCRIPTIONS = {
    "db": "Diagnose the application database: connections, activity, slow queries, locks, sizes",
    "cache": "Diagnose the Redis cache: hit rate, memory, evictions, keys",
    "health": "Check the health of the services",
    "diagnose": "Run an incident checklist: p0 (service down), p1 (errors), p2 (latency)",
}
# Families whose slash command has its own verb table, which lists their runbooks as verbs.
OWN_TABLE = frozenset({"incident"})
DEFAULT_VERB = "run"

RUNBOOK = SlashCommand(
    command="/runbook",
    description="List, explain and run the runbooks",
    subcommands=[
        Subcommand(name="list", usage="list", summary="every runbook, its command and its risk"),
        Subcommand(name="show", usage="show <id>", summary="what a runbook checks and may do"),
        Subcommand(name="run", usage="run <id> [name=value …]", summary="run a runbook's diagnosis here"),
    ],
)


class ListRunbooks(BaseModel):
    pass


class ShowRunbook(BaseModel):
    runbook_id: str


class RunRequest(BaseModel):
    runbook_id: str
    params: dict[str, Any]


class ActionRequest(BaseModel):
    """A request to run a runbook action (`/runbook run db.connections:terminate_idle …`)."""

    runbook_id: str
    action_id: str
    params: dict[str, Any]


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
    return Usage(
        text=f"I don't know `/{family} {escape(words[0][:40])}`.\n{family_usage(family, catalogue)}",
        unknown=words[0].lower(),
    )


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


def parse_runbook_command(
    text: str, catalogue: Catalogue
) -> ListRunbooks | ShowRunbook | RunRequest | ActionRequest | Usage:
    """`/runbook list | show <id> | run <id> …` through the `/runbook` verb table."""
    verb, rest = RUNBOOK.split(text)
    if verb in ("", "help"):
        return RUNBOOK.answer()
    if RUNBOOK.verb(verb) is None:
        return RUNBOOK.unknown(verb)
    if verb == "list":
        return ListRunbooks()
    if verb == "show":
        runbook = catalogue.get(rest.lower())
        if runbook is None:
            return Usage(text=f"No runbook `{escape(rest[:60])}`. Try `/runbook list`.")
        return ShowRunbook(runbook_id=runbook.id)
    return parse_run(rest, catalogue)


def family_commands(catalogue: Catalogue) -> list[SlashCommand]:
    """A verb table per catalogue family (`/db connections`, `/cache stats`…); a family's runbook
    without a subcommand answers the bare command and is listed as `run`."""
    commands = []
    for family, members in catalogue.families().items():
        if family in OWN_TABLE:
            continue
        names = [r.command.subcommand for r in members if r.command and r.command.subcommand]
        commands.append(
            SlashCommand(
                command=f"/{family}",
                hint=(" | ".join(names) or "[name=value …]")[:1000],
                description=FAMILY_DESCRIPTIONS.get(
                    family, f"Runbooks: {', '.join(r.title for r in members)}"
                )[:2000],
                subcommands=[
                    Subcommand(
                        name=(r.command.subcommand if r.command and r.command.subcommand else DEFAULT_VERB),
                        usage=runbook_usage(r).split("`")[1].removeprefix(f"/{family}").strip(),
                        summary=r.title,
                    )
                    for r in members
                ],
            )
        )
    return commands

"""`/incident …` text to a typed command, through the `/incident` verb table. Pure parsing (no I/O),
so it runs on the ack path.

The table lists the incident verbs and the catalogue's incident checklists (`/incident respond`…);
each built-in verb has its argument parser below, and every other verb in the table is a checklist.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel

from bot.commands import SlashCommand, Subcommand, Usage
from bot.incidents.severity import SYMPTOM_RUNBOOKS
from bot.mrkdwn import escape
from bot.runbooks.catalogue import Catalogue

MAX_TITLE = 150
MAX_TEXT = 2000
ROLES = ("commander", "comms", "scribe")
SEVERITY_WORDS = ("p0", "p1", "p2", "p3")
_MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,20})(?:\|[^>]{0,80})?>$")
_SYMPTOM = re.compile(r"(?:^|\s)symptom=(\S+)", re.IGNORECASE)
ROLE_USAGE = "Usage: `/incident role <commander|comms|scribe> @person`."

VERBS = [
    Subcommand(
        name="declare",
        usage="declare <p0|p1|p2|p3> <title> [symptom=latency|errors|down]",
        summary="open an incident (no arguments: a form)",
    ),
    Subcommand(name="update", usage="update <text>", summary="post a status update"),
    Subcommand(name="severity", usage="severity <p0|p1|p2|p3>", summary="change the severity"),
    Subcommand(name="role", usage="role <commander|comms|scribe> @person", summary="assign a role"),
    Subcommand(name="note", usage="note <text>", summary="add to the timeline"),
    Subcommand(name="root-cause", usage="root-cause <text>", summary="record the root cause"),
    Subcommand(name="status", usage="status", summary="the card again, with elapsed time"),
    Subcommand(name="list", usage="list", summary="open incidents"),
    Subcommand(name="timeline", usage="timeline", summary="what happened, in order"),
    Subcommand(
        name="resolve",
        usage="resolve <summary>",
        summary="close it (asks for the root cause if none is recorded)",
    ),
    Subcommand(
        name="postmortem", usage="postmortem", summary="draft the post-incident review from what happened"
    ),
]


def incident_command(catalogue: Catalogue) -> SlashCommand:
    """The `/incident` table: the built-in verbs, then the catalogue's incident checklists."""
    checklists = [
        Subcommand(name=r.command.subcommand, usage=r.command.subcommand, summary=r.title)
        for r in catalogue.families().get("incident", [])
        if r.command and r.command.subcommand
    ]
    return SlashCommand(
        command="/incident",
        description="Declare and run an incident: channel, roles, updates, timeline, resolve",
        subcommands=[*VERBS, *checklists],
    )


class Declare(BaseModel):
    severity: Literal["p0", "p1", "p2", "p3"]
    title: str
    symptom: str | None = None


class DeclareForm(BaseModel):
    """Not enough to declare from the text: open the form, pre-filled with what was given."""

    severity: str | None = None
    title: str = ""


class Simple(BaseModel):
    verb: Literal[
        "update",
        "note",
        "resolve",
        "root-cause",
        "status",
        "list",
        "timeline",
        "severity",
        "role",
        "postmortem",
    ]
    text: str = ""
    user: str | None = None


class Checklist(BaseModel):
    """A catalogue runbook answered under `/incident` (respond, major, security…)."""

    subcommand: str
    rest: str


IncidentCommand = Declare | DeclareForm | Simple | Usage | Checklist


def _declare(table: SlashCommand, rest: str) -> IncidentCommand:
    if not rest:
        return DeclareForm()
    severity, _, title = rest.partition(" ")
    severity, title = severity.lower(), title.strip()
    symptom = None
    found = _SYMPTOM.search(title)
    if found:
        symptom = found.group(1).lower()
        title = (title[: found.start()] + title[found.end() :]).strip()
        if symptom not in SYMPTOM_RUNBOOKS:
            known = ", ".join(SYMPTOM_RUNBOOKS)
            return table.answer(f"`{escape(symptom[:20])}` is not a symptom I know: use {known}.")
    if severity not in SEVERITY_WORDS:
        return table.answer(f"`{escape(severity[:10])}` is not a severity: use p0, p1, p2 or p3.")
    if not title:
        return DeclareForm(severity=severity)
    if len(title) > MAX_TITLE:
        return table.answer(f"The title is {len(title)} characters; keep it under {MAX_TITLE}.")
    return Declare(severity=severity, title=title, symptom=symptom)


def _with_text(
    verb: Literal["update", "note", "resolve", "root-cause"],
) -> Callable[[SlashCommand, str], IncidentCommand]:
    def parse(table: SlashCommand, rest: str) -> IncidentCommand:
        if verb != "resolve" and not rest:
            return table.answer(f"`/incident {verb}` needs some text.")
        if len(rest) > MAX_TEXT:
            return table.answer(f"That is {len(rest)} characters; keep it under {MAX_TEXT}.")
        return Simple(verb=verb, text=rest)

    return parse


def _bare(
    verb: Literal["status", "list", "timeline", "postmortem"],
) -> Callable[[SlashCommand, str], IncidentCommand]:
    return lambda table, rest: Simple(verb=verb)


def _severity(table: SlashCommand, rest: str) -> IncidentCommand:
    if rest.lower() not in SEVERITY_WORDS:
        return table.answer("Give the new severity: p0, p1, p2 or p3.")
    return Simple(verb="severity", text=rest.lower())


def _role(table: SlashCommand, rest: str) -> IncidentCommand:
    role, _, who = rest.partition(" ")
    match = _MENTION.match(who.strip())
    if role.lower() not in ROLES or match is None:
        return table.answer(ROLE_USAGE)
    return Simple(verb="role", text=role.lower(), user=match.group(1))


PARSERS: dict[str, Callable[[SlashCommand, str], IncidentCommand]] = {
    "declare": _declare,
    "update": _with_text("update"),
    "note": _with_text("note"),
    "resolve": _with_text("resolve"),
    "root-cause": _with_text("root-cause"),
    "status": _bare("status"),
    "list": _bare("list"),
    "timeline": _bare("timeline"),
    "postmortem": _bare("postmortem"),
    "severity": _severity,
    "role": _role,
}


def parse(text: str, table: SlashCommand) -> IncidentCommand:
    verb, rest = table.split(text)
    if verb in ("", "help"):
        return table.answer()
    if table.verb(verb) is None:
        return table.unknown(verb)
    parser = PARSERS.get(verb)
    return parser(table, rest) if parser else Checklist(subcommand=verb, rest=rest)

"""`/incident …` text to a typed command. Pure parsing (no I/O), so it runs on the ack path."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

from bot.mrkdwn import escape

MAX_TITLE = 150
MAX_TEXT = 2000
ROLES = ("commander", "comms", "scribe")
_MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,20})(?:\|[^>]{0,80})?>$")

USAGE = "\n".join(
    [
        "*/incident* — declare and run an incident:",
        "• `/incident declare <p0|p1|p2|p3> <title>` — open an incident (no arguments: a form)",
        "• `/incident update <text>` — post a status update",
        "• `/incident severity <p0|p1|p2|p3>` · `/incident status` · `/incident list`",
        "• `/incident role <commander|comms|scribe> @person`",
        "• `/incident note <text>` · `/incident timeline`",
        "• `/incident resolve <summary>` — close it (asks for the root cause if none is recorded)",
        "• `/incident root-cause <text>` — record the root cause",
        "• `/incident postmortem` — draft the post-incident review from what happened",
    ]
)


class Declare(BaseModel):
    severity: Literal["p0", "p1", "p2", "p3"]
    title: str


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


class Usage(BaseModel):
    text: str


class Runbook(BaseModel):
    """A catalogue runbook answered under `/incident` (respond, major, security…)."""

    subcommand: str
    rest: str


IncidentCommand = Declare | DeclareForm | Simple | Usage | Runbook


def _usage(problem: str) -> Usage:
    return Usage(text=f"{escape(problem)}\n{USAGE}" if problem else USAGE)


def parse(text: str, runbook_subcommands: set[str]) -> IncidentCommand:
    verb, _, rest = text.strip().partition(" ")
    verb, rest = verb.lower(), rest.strip()
    if verb in ("", "help"):
        return _usage("")
    if verb == "declare":
        severity, _, title = rest.partition(" ")
        severity, title = severity.lower(), title.strip()
        if not rest:
            return DeclareForm()
        if severity not in ("p0", "p1", "p2", "p3"):
            return _usage(f"`{severity[:10]}` is not a severity: use p0, p1, p2 or p3.")
        if not title:
            return DeclareForm(severity=severity)
        if len(title) > MAX_TITLE:
            return _usage(f"The title is {len(title)} characters; keep it under {MAX_TITLE}.")
        return Declare(severity=severity, title=title)
    if verb in ("update", "note", "resolve", "root-cause"):
        if verb != "resolve" and not rest:
            return _usage(f"`/incident {verb}` needs some text.")
        if len(rest) > MAX_TEXT:
            return _usage(f"That is {len(rest)} characters; keep it under {MAX_TEXT}.")
        return Simple(verb=verb, text=rest)
    if verb in ("status", "list", "timeline", "postmortem"):
        return Simple(verb=verb)
    if verb == "severity":
        if rest.lower() not in ("p0", "p1", "p2", "p3"):
            return _usage("Give the new severity: p0, p1, p2 or p3.")
        return Simple(verb="severity", text=rest.lower())
    if verb == "role":
        role, _, who = rest.partition(" ")
        match = _MENTION.match(who.strip())
        if role.lower() not in ROLES or match is None:
            return _usage("Usage: `/incident role <commander|comms|scribe> @person`.")
        return Simple(verb="role", text=role.lower(), user=match.group(1))
    if verb in runbook_subcommands:
        return Runbook(subcommand=verb, rest=rest)
    return _usage(f"I don't know `/incident {verb[:30]}`.")

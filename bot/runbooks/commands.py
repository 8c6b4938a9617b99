"""From slash-command text to a typed request: which runbook, with which validated parameters.

Pure parsing, no I/O, so it runs on the ack path. Anything wrong becomes a `Usage` reply that
tells the person what they can type instead.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bot.render.blocks import escape
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.model import Runbook
from bot.runbooks.params import ParamError, bind_params, split_words, usage_for


class RunRequest(BaseModel):
    runbook_id: str
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


def parse_run(text: str, catalogue: Catalogue) -> RunRequest | Usage:
    """`/runbook run <id> [name=value …]`, text after `run`."""
    try:
        words = split_words(text)
    except ParamError as exc:
        return Usage(text=escape(str(exc)))
    if not words:
        return Usage(text="Usage: `/runbook run <id> [name=value …]` — `/runbook list` shows the ids.")
    runbook = catalogue.get(words[0].lower())
    if runbook is None:
        return Usage(text=f"No runbook `{escape(words[0][:60])}`. `/runbook list` shows them all.")
    return _bind(runbook, words[1:])

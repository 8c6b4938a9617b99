"""One verb table per command family: the parser, the usage text, `/opsbot help` and the manifest
all come from it, so they agree verb by verb — checked here both ways for every slash command."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.commands import SlashCommand, Usage
from bot.incidents import commands as incident_commands
from bot.manifest import build_manifest
from bot.render.help import help_blocks
from bot.runbooks.catalogue import Catalogue, load_catalogue
from bot.runbooks.commands import DEFAULT_VERB, parse_family, parse_runbook_command
from handlers import build_catalogue

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = load_catalogue(ROOT / "runbooks")
COMMANDS = list(build_catalogue(CATALOGUE))

Parser = Callable[[str], object]


def parser_for(table: SlashCommand, catalogue: Catalogue) -> Parser:
    """What the listener of `table.command` parses its text with."""
    if table.command == "/incident":
        return lambda text: incident_commands.parse(text, table)
    if table.command == "/runbook":
        return lambda text: parse_runbook_command(text, catalogue)
    if table.command in ("/opsbot", "/approvals"):
        return lambda text: table.pick(text, default=table.subcommands[0].name)
    family = table.command.removeprefix("/")
    assert family in catalogue.families(), f"{table.command} has no parser this test knows"
    return lambda text: parse_family(family, text, catalogue)


def typed(table: SlashCommand, verb: str) -> str:
    """The text a person types for `verb` (a family's default runbook answers the bare command)."""
    return "" if verb == DEFAULT_VERB and table.command not in ("/incident", "/runbook") else verb


def is_unknown(answer: object) -> bool:
    return isinstance(answer, Usage) and answer.unknown is not None


def help_text() -> str:
    commands = build_catalogue(CATALOGUE)
    return "\n".join(str(block.get("text", {}).get("text", "")) for block in help_blocks(commands))


def manifest_hints() -> dict[str, str]:
    commands = build_manifest(CATALOGUE)["features"]["slash_commands"]
    return {c["command"]: c["usage_hint"] for c in commands}


CASES = [(table.command, verb.name) for table in COMMANDS for verb in table.subcommands]


def test_every_command_has_verbs_and_the_incident_table_lists_root_cause_and_postmortem() -> None:
    assert all(table.subcommands for table in COMMANDS)
    incident = next(t for t in COMMANDS if t.command == "/incident")
    assert {"root-cause", "postmortem", "declare", "resolve"} <= {v.name for v in incident.subcommands}
    assert len(CASES) > 40


@pytest.mark.parametrize(("command", "verb"), CASES)
def test_each_listed_verb_is_parsed_shown_in_help_and_hinted_in_the_manifest(command: str, verb: str) -> None:
    table = next(t for t in COMMANDS if t.command == command)
    answer = parser_for(table, CATALOGUE)(typed(table, verb))
    assert not is_unknown(answer), (command, verb, answer)
    usage = next(v.usage for v in table.subcommands if v.name == verb)
    assert f"`{f'{command} {usage}'.strip()}`" in help_text()
    hint = manifest_hints()[command]
    assert verb in hint or (verb == DEFAULT_VERB and hint), (command, verb, hint)


def has_default_runbook(table: SlashCommand) -> bool:
    """A family whose bare command runs a runbook reads any word as that runbook's parameter."""
    family = table.command.removeprefix("/")
    return family in CATALOGUE.families() and CATALOGUE.for_command(family, None) is not None


@pytest.mark.parametrize("command", [t.command for t in COMMANDS if not has_default_runbook(t)])
def test_a_verb_not_in_the_table_is_refused_by_the_parser_with_the_usage(command: str) -> None:
    table = next(t for t in COMMANDS if t.command == command)
    answer = parser_for(table, CATALOGUE)("frobnicate now")
    assert is_unknown(answer), answer
    assert isinstance(answer, Usage)
    assert answer.unknown == "frobnicate"
    assert table.command in answer.text


def test_the_incident_parser_handles_no_verb_outside_its_table() -> None:
    """Every built-in verb with a parser is in the table, and every table verb without one is a
    checklist runbook of the catalogue."""
    table = incident_commands.incident_command(CATALOGUE)
    listed = {v.name for v in table.subcommands}
    assert set(incident_commands.PARSERS) <= listed
    checklists = listed - set(incident_commands.PARSERS)
    runbook_verbs = {
        r.command.subcommand
        for r in CATALOGUE.families().get("incident", [])
        if r.command and r.command.subcommand
    }
    assert checklists == runbook_verbs

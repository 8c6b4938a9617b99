"""Slash commands as verb tables: one source for parsing, usage text, `/opsbot help` and the manifest.

A command family (`/incident`, `/runbook`, `/db`…) is a `SlashCommand` whose subcommands are its
verbs. Parsers look verbs up here, usage and help are printed from here, and the manifest's usage
hint is built from here, so a verb cannot be handled without being listed, or listed without being
handled (tests/foundation/test_command_tables.py checks every verb both ways).
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel, Field

from bot.mrkdwn import escape

MAX_USAGE_HINT = 1000


class Subcommand(BaseModel):
    """One verb: its name, what follows the command when typed (`usage`), and what it does."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    usage: str
    summary: str


class Usage(BaseModel):
    """A short ephemeral answer: what went wrong (if anything) and how to use the command.

    `unknown` is the verb that is not in the table, when that is what went wrong.
    """

    text: str
    unknown: str | None = None


class SlashCommand(BaseModel):
    """A slash command as Slack's manifest, our help text and our parsers all describe it."""

    command: str = Field(pattern=r"^/[a-z][a-z0-9_-]{0,30}$")
    description: str = Field(max_length=2000)
    subcommands: list[Subcommand] = Field(default_factory=list)
    # Set only where the verbs do not say it better (a command whose one verb is optional).
    hint: str | None = Field(None, max_length=MAX_USAGE_HINT)

    def usage(self) -> str:
        """Multi-line usage text for an ephemeral reply and the help card."""
        lines = [f"*{self.command}* — {self.description}"]
        lines += [f"• `{f'{self.command} {s.usage}'.strip()}` — {s.summary}" for s in self.subcommands]
        return "\n".join(lines)

    def usage_hint(self) -> str:
        """The manifest's one-line hint: every verb by name."""
        if self.hint is not None:
            return self.hint
        text = " | ".join(s.name for s in self.subcommands)
        return text if len(text) <= MAX_USAGE_HINT else text[: MAX_USAGE_HINT - 1] + "…"

    def pick(self, text: str, default: str) -> tuple[Subcommand, str] | Usage:
        """The verb typed (or `default` when none was) and the rest of the text; Usage if unknown."""
        verb, rest = self.split(text)
        found = self.verb(verb or default)
        return (found, rest) if found is not None else self.unknown(verb)

    def verb(self, name: str) -> Subcommand | None:
        return next((s for s in self.subcommands if s.name == name), None)

    def split(self, text: str) -> tuple[str, str]:
        """`"update all good"` → `("update", "all good")`; the verb lower-cased."""
        verb, _, rest = text.strip().partition(" ")
        return verb.lower(), rest.strip()

    def answer(self, problem: str = "") -> Usage:
        """Usage, after a line saying what was wrong."""
        return Usage(text=f"{problem}\n{self.usage()}" if problem else self.usage())

    def unknown(self, verb: str) -> Usage:
        shown = escape(verb[:40])
        return Usage(text=f"I don't know `{self.command} {shown}`.\n{self.usage()}", unknown=verb)


class CommandCatalogue:
    """Every slash command registered by the handlers, in registration order."""

    def __init__(self) -> None:
        self._commands: dict[str, SlashCommand] = {}

    def add(self, command: SlashCommand) -> SlashCommand:
        if command.command in self._commands:
            raise ValueError(f"{command.command} registered twice")
        self._commands[command.command] = command
        return command

    def __iter__(self) -> Iterator[SlashCommand]:
        return iter(self._commands.values())

    def get(self, command: str) -> SlashCommand | None:
        return self._commands.get(command)

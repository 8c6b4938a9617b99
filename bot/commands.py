"""The catalogue of slash commands the bot answers: one source for help text and the app manifest."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel, Field


class Subcommand(BaseModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    usage: str
    summary: str


class SlashCommand(BaseModel):
    """A slash command as Slack's manifest and our help text both describe it."""

    command: str = Field(pattern=r"^/[a-z][a-z0-9_-]{0,30}$")
    description: str = Field(max_length=2000)
    usage_hint: str = Field(max_length=1000)
    subcommands: list[Subcommand] = Field(default_factory=list)

    def usage(self) -> str:
        """Multi-line usage text for an ephemeral reply."""
        lines = [f"*{self.command}* — {self.description}"]
        lines += [f"• `{self.command} {s.usage}` — {s.summary}" for s in self.subcommands]
        return "\n".join(lines)


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

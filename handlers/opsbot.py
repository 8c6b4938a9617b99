"""`/opsbot`: the bot's front page (help); other families register their own commands."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.say.async_say import AsyncSay

from bot.commands import CommandCatalogue, SlashCommand, Subcommand
from bot.mrkdwn import escape
from bot.render.help import help_blocks, help_text
from bot.runbooks.catalogue import Catalogue
from bot.runtime import Runtime

OPSBOT = SlashCommand(
    command="/opsbot",
    description="What opsbot can do, and how to use it",
    usage_hint="help",
    subcommands=[Subcommand(name="help", usage="help", summary="list every command and what it does")],
)
SCOPES = ("commands", "chat:write", "app_mentions:read")
EVENTS = ("app_mention",)


def slash_commands(runbooks: Catalogue) -> list[SlashCommand]:
    return [OPSBOT]


def register(app: AsyncApp, runtime: Runtime, catalogue: CommandCatalogue) -> None:
    # The catalogue is complete before any listener is registered and never changes while the bot
    # runs, so the help card is rendered once here rather than on every ack.
    text, blocks = help_text(catalogue), help_blocks(catalogue)

    @app.command(OPSBOT.command)
    async def opsbot_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        words = str(command.get("text") or "").split()
        subcommand = words[0].lower() if words else "help"
        if subcommand != "help":
            unknown = escape(subcommand[:40])
            await ack(response_type="ephemeral", text=f"I don't know `{unknown}`.\n{OPSBOT.usage()}")
            return
        await ack(response_type="ephemeral", text=text, blocks=blocks)

    @app.event("app_mention")
    async def mentioned(event: dict[str, Any], say: AsyncSay) -> None:
        # Reply in the thread so a mention in a busy incident channel does not add noise to it.
        await say(
            text="I'm opsbot. Type `/opsbot help` to see what I can run for you.",
            thread_ts=event.get("thread_ts") or event.get("ts"),
        )

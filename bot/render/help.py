"""The `/opsbot help` card, generated from the command catalogue."""

from __future__ import annotations

from bot.commands import CommandCatalogue
from bot.render.blocks import MAX_BLOCKS, Block, context, header, section


def help_blocks(catalogue: CommandCatalogue) -> list[Block]:
    blocks: list[Block] = [header("What opsbot can do")]
    commands = list(catalogue)
    room = MAX_BLOCKS - 2
    for command in commands[:room]:
        blocks.append(section(command.usage(), block_id=f"help-{command.command.lstrip('/')}"))
    if len(commands) > room:
        blocks.append(context(f"{len(commands) - room} more commands: see the README"))
    blocks.append(
        context(
            "Risky actions always need a second person to approve. Nothing you type is run as SQL or shell."
        )
    )
    return blocks


def help_text(catalogue: CommandCatalogue) -> str:
    """Plain-text fallback (notifications, screen readers)."""
    return "opsbot commands: " + ", ".join(c.command for c in catalogue)

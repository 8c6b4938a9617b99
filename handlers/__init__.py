"""Slack listeners, one module per command family.

Each module declares what it needs from Slack (`COMMANDS`, `SCOPES`, `EVENTS`) and a
`register(app, runtime, catalogue)`; the manifest and help text are built from those declarations.
"""

from __future__ import annotations

from types import ModuleType

from slack_bolt.async_app import AsyncApp

from bot.commands import CommandCatalogue
from bot.runtime import Runtime
from handlers import opsbot

MODULES: tuple[ModuleType, ...] = (opsbot,)


def build_catalogue() -> CommandCatalogue:
    catalogue = CommandCatalogue()
    for module in MODULES:
        for command in module.COMMANDS:
            catalogue.add(command)
    return catalogue


def required_scopes() -> list[str]:
    return sorted({scope for module in MODULES for scope in module.SCOPES})


def subscribed_events() -> list[str]:
    return sorted({event for module in MODULES for event in module.EVENTS})


def register_all(app: AsyncApp, runtime: Runtime, catalogue: CommandCatalogue) -> None:
    for module in MODULES:
        module.register(app, runtime, catalogue)

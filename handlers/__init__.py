"""Slack listeners, one module per command family or interaction: thin, module-level functions.

Each module declares what it needs from Slack (`slash_commands(runbooks)`, `SCOPES`, `EVENTS`) and
its listener table (`listeners(runbooks)`); the manifest and help text come from those declarations,
and `register_all` registers every table through one guard (`handlers.listening`).
"""

from __future__ import annotations

from types import ModuleType

from slack_bolt.async_app import AsyncApp

from bot.commands import CommandCatalogue
from bot.runbooks.catalogue import Catalogue
from handlers import alerts, approvals, incidents, opsbot, reviews, runbooks, timeline
from handlers.listening import register

MODULES: tuple[ModuleType, ...] = (opsbot, incidents, timeline, runbooks, approvals, reviews, alerts)


def build_catalogue(runbooks: Catalogue) -> CommandCatalogue:
    catalogue = CommandCatalogue()
    for module in MODULES:
        for command in module.slash_commands(runbooks):
            catalogue.add(command)
    return catalogue


def required_scopes() -> list[str]:
    return sorted({scope for module in MODULES for scope in module.SCOPES})


def subscribed_events() -> list[str]:
    return sorted({event for module in MODULES for event in module.EVENTS})


def register_all(app: AsyncApp, runbooks: Catalogue) -> None:
    register(app, [module.listeners(runbooks) for module in MODULES])

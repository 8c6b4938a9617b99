"""📌 reactions and pins on messages in an incident channel: the timeline's Slack events."""

from __future__ import annotations

from typing import Any

from bot.commands import SlashCommand
from bot.runbooks.catalogue import Catalogue
from handlers.listening import Delivery, Listeners

PIN_REACTION = "pushpin"
SCOPES = ("pins:read", "reactions:read", "channels:history")
EVENTS = ("reaction_added", "reaction_removed", "pin_added", "pin_removed")


def slash_commands(runbooks: Catalogue) -> list[SlashCommand]:
    return []


def _event(delivery: Delivery) -> dict[str, Any]:
    return dict(delivery.body.get("event") or {})


def _pushpinned_message(event: dict[str, Any]) -> tuple[str, str] | None:
    item = event.get("item") or {}
    if event.get("reaction") == PIN_REACTION and item.get("type") == "message":
        return str(item["channel"]), str(item["ts"])
    return None


def _pinned_message(event: dict[str, Any]) -> tuple[str, str] | None:
    item = event.get("item") or {}
    message = item.get("message") or {}
    if message.get("ts"):
        return str(event.get("channel_id") or item.get("channel")), str(message["ts"])
    return None


async def reaction_added(delivery: Delivery) -> None:
    event = _event(delivery)
    found = _pushpinned_message(event)
    if found:
        await delivery.services.timeline.pinned(*found, by=str(event.get("user")), via="reaction")


async def reaction_removed(delivery: Delivery) -> None:
    found = _pushpinned_message(_event(delivery))
    if found:
        await delivery.services.timeline.unpinned(*found)


async def pin_added(delivery: Delivery) -> None:
    event = _event(delivery)
    found = _pinned_message(event)
    if found:
        await delivery.services.timeline.pinned(*found, by=str(event.get("user")), via="pin")


async def pin_removed(delivery: Delivery) -> None:
    found = _pinned_message(_event(delivery))
    if found:
        await delivery.services.timeline.unpinned(*found)


def listeners(runbooks: Catalogue) -> Listeners:
    return Listeners(
        events={
            "reaction_added": reaction_added,
            "reaction_removed": reaction_removed,
            "pin_added": pin_added,
            "pin_removed": pin_removed,
        }
    )

"""The incident timeline from Slack: 📌 reactions and pins on messages in an incident channel.

An entry is stamped with the message's own time and author; removing the reaction or the pin removes
it. Entries are keyed by channel and message, so a redelivered event never adds a second one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands import CommandCatalogue, SlashCommand
from bot.logs import get_logger
from bot.mrkdwn import clip
from bot.runbooks.catalogue import Catalogue
from bot.runtime import Runtime

log = get_logger(__name__)

PIN_REACTION = "pushpin"
SCOPES = ("pins:read", "reactions:read", "channels:history")
EVENTS = ("reaction_added", "reaction_removed", "pin_added", "pin_removed")


def slash_commands(runbooks: Catalogue) -> list[SlashCommand]:
    return []


def register(app: AsyncApp, runtime: Runtime, catalogue: CommandCatalogue) -> None:
    service = runtime.incidents

    async def here(channel: str) -> Any:
        return await service.store.in_channel(channel)

    async def pinned(channel: str, ts: str, by: str, source: str) -> None:
        incident = await here(channel)
        if incident is None:
            return
        message = await fetch_message(app.client, channel, ts)
        author = str(message.get("user") or by) if message else by
        text = clip(str((message or {}).get("text") or "(message)"), 500)
        await service.store.add_event(
            incident.id,
            kind="pinned",
            actor=author,
            source_key=f"pin:{channel}:{ts}",
            message_ts=ts,
            at=datetime.fromtimestamp(float(ts), UTC),
            text=text,
            details={"via": source, "by": by},
        )

    async def unpinned(channel: str, ts: str) -> None:
        incident = await here(channel)
        if incident is not None:
            await service.store.remove_event(incident.id, f"pin:{channel}:{ts}")

    @app.event("reaction_added")
    async def reaction_added(event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        if event.get("reaction") == PIN_REACTION and item.get("type") == "message":
            await pinned(str(item["channel"]), str(item["ts"]), str(event.get("user")), "reaction")

    @app.event("reaction_removed")
    async def reaction_removed(event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        if event.get("reaction") == PIN_REACTION and item.get("type") == "message":
            await unpinned(str(item["channel"]), str(item["ts"]))

    @app.event("pin_added")
    async def pin_added(event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        message = item.get("message") or {}
        if message.get("ts"):
            await pinned(
                str(event.get("channel_id") or item.get("channel")),
                str(message["ts"]),
                str(event.get("user")),
                "pin",
            )

    @app.event("pin_removed")
    async def pin_removed(event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        message = item.get("message") or {}
        if message.get("ts"):
            await unpinned(str(event.get("channel_id") or item.get("channel")), str(message["ts"]))


async def fetch_message(client: AsyncWebClient, channel: str, ts: str) -> dict[str, Any] | None:
    """The message at `ts` (top level or in a thread), for its author and text."""
    try:
        response = await client.conversations_history(
            channel=channel, latest=ts, oldest=ts, inclusive=True, limit=1
        )
        messages = response.get("messages") or []
        if messages:
            return dict(messages[0])
        replies = await client.conversations_replies(channel=channel, ts=ts, limit=1)
        found = replies.get("messages") or []
        return dict(found[0]) if found else None
    except SlackApiError as exc:
        log.warning("pinned_message_lookup_failed", error=exc.response.get("error"))
        return None

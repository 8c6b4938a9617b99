"""The incident timeline from Slack: 📌 reactions and pins on messages in an incident channel.

An entry is stamped with the message's own time and author; removing the reaction or the pin removes
it. Entries are keyed by channel and message, so a redelivered event never adds a second one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.incidents.store import IncidentStore
from bot.logs import get_logger
from bot.mrkdwn import clip

log = get_logger(__name__)


class TimelineService:
    def __init__(self, store: IncidentStore, client: AsyncWebClient) -> None:
        self._store = store
        self._client = client

    async def pinned(self, channel: str, ts: str, by: str, via: str) -> None:
        """A message pinned or 📌'd in an incident channel joins its timeline."""
        incident = await self._store.in_channel(channel)
        if incident is None:
            return
        message = await self._message(channel, ts)
        author = str(message.get("user") or by) if message else by
        await self._store.add_event(
            incident.id,
            kind="pinned",
            actor=author,
            source_key=f"pin:{channel}:{ts}",
            message_ts=ts,
            at=datetime.fromtimestamp(float(ts), UTC),
            text=clip(str((message or {}).get("text") or "(message)"), 500),
            details={"via": via, "by": by},
        )

    async def unpinned(self, channel: str, ts: str) -> None:
        incident = await self._store.in_channel(channel)
        if incident is not None:
            await self._store.remove_event(incident.id, f"pin:{channel}:{ts}")

    async def _message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The message at `ts` (top level or in a thread), for its author and text."""
        try:
            response = await self._client.conversations_history(
                channel=channel, latest=ts, oldest=ts, inclusive=True, limit=1
            )
            messages = response.get("messages") or []
            if messages:
                return dict(messages[0])
            replies = await self._client.conversations_replies(channel=channel, ts=ts, limit=1)
            found = replies.get("messages") or []
            return dict(found[0]) if found else None
        except SlackApiError as exc:
            log.warning("pinned_message_lookup_failed", error=exc.response.get("error"))
            return None

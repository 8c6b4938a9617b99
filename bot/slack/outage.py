"""Telling the person who asked when opsbot's own database is down, instead of going quiet.

A Bolt middleware remembers who sent each request (channel and user) in a context variable; a
background task started by the handler inherits it, so wherever a store error surfaces — in the
listener or in its background work — the person gets one short ephemeral message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import psycopg
from procrastinate.exceptions import ConnectorException
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.logs import get_logger
from bot.slack.delivery import context_fields

log = get_logger(__name__)

STORE_UNAVAILABLE = (
    "⚠️ opsbot's database is unavailable right now, so nothing was changed. "
    "Please retry in a minute; `/opsbot help` still works."
)
INTERNAL_ERROR = "⚠️ opsbot hit an internal error handling that. It is logged; please retry."


@dataclass(frozen=True)
class Requester:
    user: str
    channel: str | None


_requester: ContextVar[Requester | None] = ContextVar("opsbot_requester", default=None)


def is_store_error(exc: BaseException) -> bool:
    """The bot's PostgreSQL (pool, queries, job queue) could not be reached or went away."""
    return isinstance(exc, psycopg.OperationalError | ConnectorException)


def requester_of(body: dict[str, Any]) -> Requester | None:
    """Who sent a slash command or interaction, and from which channel (None for events)."""
    if isinstance(body.get("event"), dict):
        return None
    fields = context_fields(body)
    user = fields.get("slack_user")
    return Requester(user=user, channel=fields.get("slack_channel")) if user else None


async def remember_requester(body: dict[str, Any], next: Callable[[], Awaitable[Any]]) -> Any:
    """Bolt global middleware (Bolt passes `next` by that name)."""
    _requester.set(requester_of(body))
    return await next()


async def tell_requester(client: AsyncWebClient, text: str) -> None:
    """An ephemeral to whoever sent the request being handled; a DM when there is no channel."""
    who = _requester.get()
    if who is None:
        return
    try:
        if who.channel:
            await client.chat_postEphemeral(channel=who.channel, user=who.user, text=text)
        else:
            await client.chat_postMessage(channel=who.user, text=text)
    except SlackApiError as exc:
        log.warning("outage_notice_failed", error=exc.response.get("error"))


def notice_for(exc: BaseException) -> str:
    return STORE_UNAVAILABLE if is_store_error(exc) else INTERNAL_ERROR

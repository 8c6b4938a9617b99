"""Who asked, and telling them: the person behind a Slack delivery, and the one place failures reach them.

Every command, click or form submission has an asker (user, channel, trigger, response URL). The
app's middleware puts it in Bolt's context and in a context variable that background work started
by the listener inherits, so wherever a use case fails — a `UserError` a service raised, opsbot's own
database being down, or a bug — the person gets one short ephemeral message, written here.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import psycopg
from procrastinate.exceptions import ConnectorException
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.errors import UserError
from bot.logs import get_logger
from bot.render.blocks import Block
from bot.slack.delivery import context_fields

log = get_logger(__name__)

STORE_UNAVAILABLE = (
    "⚠️ opsbot's database is unavailable right now, so nothing was changed. "
    "Please retry in a minute; `/opsbot help` still works."
)
INTERNAL_ERROR = "⚠️ opsbot hit an internal error handling that. It is logged; please retry."


@dataclass(frozen=True)
class Asker:
    """The person behind one delivery and where they are; None fields are not in this delivery."""

    user: str
    channel: str | None = None
    channel_name: str | None = None
    trigger_id: str | None = None
    response_url: str | None = None
    thread_ts: str | None = None


_current: ContextVar[Asker | None] = ContextVar("opsbot_asker", default=None)


def asker_of(body: dict[str, Any]) -> Asker | None:
    """Who sent a slash command, click or form (None for events: nobody is waiting for an answer)."""
    if isinstance(body.get("event"), dict):
        return None
    fields = context_fields(body)
    user = fields.get("slack_user")
    if not user:
        return None
    channel = body.get("channel")
    message = body.get("message") if isinstance(body.get("message"), dict) else {}
    return Asker(
        user=user,
        channel=fields.get("slack_channel"),
        channel_name=_text(body.get("channel_name"))
        or (_text(channel.get("name")) if isinstance(channel, dict) else None),
        trigger_id=_text(body.get("trigger_id")),
        response_url=_text(body.get("response_url")),
        thread_ts=_text(message.get("thread_ts")) or _text(message.get("ts")) if message else None,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def remember(asker: Asker | None) -> None:
    """Make `asker` the person work started from here answers to (inherited by spawned tasks)."""
    _current.set(asker)


def current() -> Asker | None:
    return _current.get()


async def tell(client: AsyncWebClient, asker: Asker, text: str, blocks: list[Block] | None = None) -> None:
    """An ephemeral to the asker where they are; through the response URL where the bot cannot post
    (a channel it is not in), as a DM where there is no channel. Never raises."""
    try:
        if asker.channel:
            await client.chat_postEphemeral(channel=asker.channel, user=asker.user, text=text, blocks=blocks)
        else:
            await client.chat_postMessage(channel=asker.user, text=text, blocks=blocks)
        return
    except SlackApiError as exc:
        log.warning("ephemeral_failed", error=exc.response.get("error"))
    if asker.response_url:
        try:
            await AsyncWebhookClient(asker.response_url).send(
                text=text, blocks=blocks, response_type="ephemeral", replace_original=False
            )
        except (SlackClientError, OSError) as exc:
            log.warning("response_url_failed", error=type(exc).__name__)


def is_store_error(exc: BaseException) -> bool:
    """The bot's PostgreSQL (pool, queries, job queue) could not be reached or went away."""
    return isinstance(exc, psycopg.OperationalError | ConnectorException)


def notice_for(exc: BaseException) -> str:
    """What the person reads about a failure: the service's own sentence, or a generic notice."""
    if isinstance(exc, UserError):
        return exc.message
    return STORE_UNAVAILABLE if is_store_error(exc) else INTERNAL_ERROR


def log_failure(exc: BaseException) -> None:
    """A refusal is routine (info); anything else is a bug or an outage (error, with the traceback)."""
    if isinstance(exc, UserError):
        log.info("refused", reason=exc.message[:200])
    else:
        log.error("use_case_failed", exc_info=exc)


async def report_failure(client: AsyncWebClient, exc: BaseException, asker: Asker | None = None) -> None:
    """The one place a failed use case reaches its asker (by default, the one this work started from)."""
    log_failure(exc)
    who = asker or current()
    if who is not None:
        await tell(client, who, notice_for(exc))

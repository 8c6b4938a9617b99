"""Reading an incident channel's complete history from Slack for the post-incident review.

Owns the walk over `conversations.history` and every thread's `conversations.replies` (cursor
pagination, threads fetched concurrently while the channel is still being paged), the merge into
one chronological list without duplicates, and the id → name look-ups the Markdown conversion
needs. Rate limits are the client's business: the bot's client retries 429s after Retry-After, and
a retried request repeats the same cursor, so nothing is skipped or read twice; whatever still
fails surfaces as `HistoryError`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.errors import UserError
from bot.incidents.store import TimelineEvent
from bot.logs import get_logger

log = get_logger(__name__)

# Threads are read while the channel is still being paged; eight at a time keeps a Tier 3 budget
# from being burnt in one burst while hiding most of the per-request latency.
THREAD_CONCURRENCY = 8
LOOKUP_CONCURRENCY = 8
_MENTIONED = re.compile(r"<@([UW][A-Z0-9]{2,20})")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")
_NOT_FOUND = {"user_not_found", "users_not_found", "channel_not_found"}


class HistoryError(UserError):
    """A history read that failed for good: which channel, which method, and Slack's error code."""

    def __init__(self, channel: str, method: str, error: str) -> None:
        super().__init__(f"cannot read the history of channel {channel}: {method} failed with {error}")
        self.channel = channel
        self.method = method
        self.error = error


def ts_key(ts: str) -> tuple[int, int]:
    """Orders Slack timestamps numerically; comparing the strings breaks when seconds gain a digit."""
    seconds, _, fraction = ts.partition(".")
    return int(seconds), int(fraction.ljust(6, "0")[:6] or 0)


def ts_datetime(ts: str) -> datetime:
    """The UTC instant of a ts, built from integers so microseconds survive (a float would round)."""
    seconds, micros = ts_key(ts)
    return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=micros)


class HistoryMessage(BaseModel):
    """One message of the channel (top level or thread reply), reduced to what a review uses."""

    model_config = ConfigDict(frozen=True)

    ts: str
    at: datetime
    user: str | None
    bot_id: str | None
    text: str
    thread_ts: str | None
    is_reply: bool
    reply_count: int
    reactions: list[str]
    pinned: bool
    files: list[str]

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> HistoryMessage:
        ts = str(raw["ts"])
        thread_ts = raw.get("thread_ts")
        return cls(
            ts=ts,
            at=ts_datetime(ts),
            user=raw.get("user"),
            bot_id=raw.get("bot_id"),
            text=raw.get("text") or "",
            thread_ts=thread_ts,
            is_reply=thread_ts is not None and thread_ts != ts,
            reply_count=raw.get("reply_count") or 0,
            reactions=[r["name"] for r in raw.get("reactions") or ()],
            pinned=bool(raw.get("pinned_to")),
            # Deleted or hidden files come back without name or title; the id still says one was there.
            files=[f.get("title") or f.get("name") or f.get("id", "") for f in raw.get("files") or ()],
        )


async def read_channel(client: AsyncWebClient, channel: str, *, page_size: int = 200) -> list[HistoryMessage]:
    """Every message of `channel`, thread replies included, oldest first, each ts exactly once."""
    by_ts: dict[str, HistoryMessage] = {}
    gate = asyncio.Semaphore(THREAD_CONCURRENCY)
    threads: list[asyncio.Task[list[HistoryMessage]]] = []

    async def read_thread(thread_ts: str) -> list[HistoryMessage]:
        async with gate:
            return [
                HistoryMessage.from_api(raw)
                async for page in _pages(
                    client.conversations_replies, channel, "conversations.replies", page_size, ts=thread_ts
                )
                for raw in page
                if raw.get("ts") != thread_ts
            ]

    try:
        async for page in _pages(client.conversations_history, channel, "conversations.history", page_size):
            for raw in page:
                message = HistoryMessage.from_api(raw)
                # A live channel can shift a message onto the next page too; its thread is read once.
                first_sight = message.ts not in by_ts
                by_ts[message.ts] = message
                # Broadcast replies show up in the channel too; their thread is read via its parent.
                if first_sight and message.reply_count and not message.is_reply:
                    threads.append(asyncio.create_task(read_thread(message.ts)))
        for replies in await asyncio.gather(*threads):
            # A reply also broadcast to the channel was already seen in history: keyed by ts, kept once.
            by_ts.update((reply.ts, reply) for reply in replies)
    finally:
        # On failure the other thread reads are abandoned, and awaited so none is left dangling.
        for task in threads:
            task.cancel()
        await asyncio.gather(*threads, return_exceptions=True)
    return sorted(by_ts.values(), key=lambda m: ts_key(m.ts))


async def _pages(
    method: Callable[..., Awaitable[AsyncSlackResponse]],
    channel: str,
    name: str,
    page_size: int,
    **params: str,
) -> AsyncIterator[list[dict[str, Any]]]:
    """The `messages` of each page until `next_cursor` comes back empty."""
    cursor: str | None = None
    while True:
        try:
            response = await method(channel=channel, limit=page_size, cursor=cursor, **params)
        except SlackApiError as exc:
            raise HistoryError(channel, name, str(exc.response.get("error") or exc)) from exc
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise HistoryError(channel, name, f"{type(exc).__name__}: {exc}") from exc
        yield response.get("messages") or []
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return


async def user_names(client: AsyncWebClient, user_ids: Iterable[str]) -> dict[str, str]:
    """Display name, else real name, else handle for each id; ids Slack cannot resolve stay ids."""

    def name(response: AsyncSlackResponse) -> str | None:
        user = response.get("user") or {}
        profile = user.get("profile") or {}
        return (
            profile.get("display_name")
            or profile.get("real_name")
            or user.get("real_name")
            or user.get("name")
            or None
        )

    return await _lookup(user_ids, lambda uid: client.users_info(user=uid), name, "users.info")


def timeline_people(events: Iterable[TimelineEvent]) -> list[str]:
    """The user ids a timeline names: its actors and the `<@U…>` mentions in its text."""
    ids = {e.actor for e in events if e.actor} | {m for e in events for m in _MENTIONED.findall(e.text)}
    return sorted(i for i in ids if _USER_ID.fullmatch(i))


async def channel_names(client: AsyncWebClient, channel_ids: Iterable[str]) -> dict[str, str]:
    """Each channel's name; ids Slack cannot resolve (and DMs, which have no name) stay ids."""

    def name(response: AsyncSlackResponse) -> str | None:
        return (response.get("channel") or {}).get("name") or None

    return await _lookup(
        channel_ids, lambda cid: client.conversations_info(channel=cid), name, "conversations.info"
    )


async def _lookup(
    ids: Iterable[str],
    call: Callable[[str], Awaitable[AsyncSlackResponse]],
    pick: Callable[[AsyncSlackResponse], str | None],
    method: str,
) -> dict[str, str]:
    """One call per distinct id, a few at a time.

    A name is cosmetic in a review draft, so a failed look-up falls back to the id rather than
    losing the whole draft; failures other than "not found" are logged because they hide a problem.
    """
    gate = asyncio.Semaphore(LOOKUP_CONCURRENCY)

    async def one(ident: str) -> tuple[str, str]:
        async with gate:
            try:
                return ident, pick(await call(ident)) or ident
            except SlackApiError as exc:
                error = exc.response.get("error")
                if error not in _NOT_FOUND:
                    log.warning("postmortem.name_lookup_failed", method=method, id=ident, error=error)
                return ident, ident
            except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("postmortem.name_lookup_failed", method=method, id=ident, error=repr(exc))
                return ident, ident

    distinct = dict.fromkeys(i for i in ids if i)
    return dict(await asyncio.gather(*(one(i) for i in distinct)))

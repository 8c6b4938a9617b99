"""What Slack says about a person and a channel, asked at the moment of a request and cached briefly.

A person's facts come from `users.info` (guest: `is_restricted`/`is_ultra_restricted`; another
organisation: a `team_id` that is not ours, ours being `auth.test`'s); a channel's from
`conversations.info` (kind, `is_ext_shared`/`is_pending_ext_shared`). Answers are cached per user and
per channel for `ttl_seconds` (45 s), so a click a minute after a request is judged on fresh
facts while a burst of commands costs one lookup. A lookup that fails raises `FactsUnavailable`:
callers fail closed.

Lookups run before the ack, and `users.info` is tier 4 (about 100 a minute): two hundred people
seen for the first time in one second would wait two minutes for it. So concurrent lookups of one
person share one call, and when several new people are waiting at once they are answered from
`users.list` pages (200 people a call) instead, until each of them is found.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.logs import get_logger

log = get_logger(__name__)

ChannelKind = Literal["public", "private", "im", "mpim"]
# chat.postMessage to a user id opens (or uses) the bot's DM with that user.
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,20}$")
# New people waiting at once from which a users.list sweep answers them, and its page size and length.
SWEEP_AT = 4
SWEEP_PAGE = 200
SWEEP_PAGES = 10


class FactsUnavailable(Exception):
    """Slack could not tell who someone is or what a channel is; `what` is "person" or "channel"."""

    def __init__(self, what: Literal["person", "channel"], error: str) -> None:
        super().__init__(f"{what} lookup failed: {error}")
        self.what = what
        self.error = error


class PersonFacts(BaseModel):
    model_config = ConfigDict(frozen=True)

    user_id: str
    team_id: str
    is_guest: bool
    is_external: bool
    is_bot: bool


class ChannelFacts(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    kind: ChannelKind
    is_ext_shared: bool
    is_incident: bool = False


class Workspace(BaseModel):
    model_config = ConfigDict(frozen=True)

    team_id: str
    name: str


class Facts:
    """The cached lookups; one per running bot, shared by the admission middleware and the gate."""

    def __init__(self, client: AsyncWebClient, ttl_seconds: float = 45.0) -> None:
        self._client = client
        self.ttl_seconds = ttl_seconds
        # Each entry: when it was fetched (monotonic), and what Slack said.
        self._people: dict[str, tuple[float, PersonFacts]] = {}
        self._channels: dict[str, tuple[float, ChannelFacts]] = {}
        self._names: dict[str, tuple[float, str]] = {}
        self._workspace: Workspace | None = None
        self._workspace_lock = asyncio.Lock()
        self._asking: dict[str, asyncio.Future[PersonFacts]] = {}
        self._sweep: asyncio.Future[None] | None = None

    def _fresh(self, fetched_at: float) -> bool:
        return time.monotonic() - fetched_at < self.ttl_seconds

    async def workspace(self) -> Workspace:
        """Our own workspace (its team id and name), asked once: it does not change while we run."""
        async with self._workspace_lock:
            if self._workspace is None:
                answer = await self._call("person", "auth_test")
                self._workspace = Workspace(
                    team_id=str(answer["team_id"]), name=str(answer.get("team") or "")
                )
        return self._workspace

    async def person(self, user_id: str) -> PersonFacts:
        if self._known(user_id):
            return self._people[user_id][1]
        asking = self._asking.get(user_id)
        if asking is None:
            asking = asyncio.ensure_future(self._ask(user_id))
            self._asking[user_id] = asking
            asking.add_done_callback(lambda _: self._asking.pop(user_id, None))
        return await asyncio.shield(asking)

    async def _ask(self, user_id: str) -> PersonFacts:
        ours = (await self.workspace()).team_id
        if self._sweep is not None or len(self._asking) >= SWEEP_AT:
            if self._sweep is None:
                self._sweep = asyncio.ensure_future(self._sweep_directory(ours))
                self._sweep.add_done_callback(self._swept)
            await asyncio.shield(self._sweep)
            if self._known(user_id):
                return self._people[user_id][1]
        user = (await self._call("person", "users_info", user=user_id)).get("user") or {}
        return self._remember(user_id, user, ours)

    async def _sweep_directory(self, ours: str) -> None:
        """Read users.list pages until everyone waiting is known (or the pages run out)."""
        cursor: str | None = None
        for _ in range(SWEEP_PAGES):
            try:
                page = await self._call("person", "users_list", limit=SWEEP_PAGE, cursor=cursor)
            except FactsUnavailable:
                return  # each of them asks users.info instead
            for member in page.get("members") or []:
                if isinstance(member, dict) and member.get("id"):
                    self._remember(str(member["id"]), member, ours)
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if cursor is None or all(self._known(user) for user in self._asking):
                return

    def _swept(self, _: asyncio.Future[None]) -> None:
        self._sweep = None

    def _known(self, user_id: str) -> bool:
        cached = self._people.get(user_id)
        return cached is not None and self._fresh(cached[0])

    def _remember(self, user_id: str, user: dict[str, Any], ours: str) -> PersonFacts:
        team = str(user.get("team_id") or "")
        facts = PersonFacts(
            user_id=user_id,
            team_id=team,
            is_guest=bool(user.get("is_restricted") or user.get("is_ultra_restricted")),
            # An unknown team is not ours: fail closed rather than admit a stranger.
            is_external=team != ours or bool(user.get("is_stranger")),
            is_bot=bool(user.get("is_bot")),
        )
        self._people[user_id] = (time.monotonic(), facts)
        return facts

    async def channel(self, ref: str) -> ChannelFacts:
        """A channel by id, by name (a schedule's), or a user id (the bot's DM with that user)."""
        if _USER_ID.fullmatch(ref):
            return ChannelFacts(id=ref, kind="im", is_ext_shared=False)
        channel_id = ref if _CHANNEL_ID.fullmatch(ref) else await self._channel_id(ref.lstrip("#"))
        cached = self._channels.get(channel_id)
        if cached is not None and self._fresh(cached[0]):
            return cached[1]
        info = (await self._call("channel", "conversations_info", channel=channel_id)).get("channel") or {}
        facts = ChannelFacts(
            id=channel_id,
            kind=_kind(info),
            is_ext_shared=bool(info.get("is_ext_shared") or info.get("is_pending_ext_shared")),
        )
        self._channels[channel_id] = (time.monotonic(), facts)
        return facts

    async def _channel_id(self, name: str) -> str:
        cached = self._names.get(name)
        if cached is not None and self._fresh(cached[0]):
            return cached[1]
        cursor: str | None = None
        while True:
            page = await self._call(
                "channel",
                "conversations_list",
                types="public_channel,private_channel",
                exclude_archived=True,
                limit=200,
                cursor=cursor,
            )
            for channel in page.get("channels") or []:
                if channel.get("name") == name:
                    self._names[name] = (time.monotonic(), str(channel["id"]))
                    return str(channel["id"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if cursor is None:
                raise FactsUnavailable("channel", "channel_not_found")

    async def _call(self, what: Literal["person", "channel"], method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await getattr(self._client, method)(**kwargs)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "error")
            log.warning("access_lookup_failed", method=method, error=error)
            raise FactsUnavailable(what, error) from None
        except (SlackClientError, OSError, TimeoutError) as exc:
            log.warning("access_lookup_failed", method=method, error=type(exc).__name__)
            raise FactsUnavailable(what, type(exc).__name__) from None
        return dict(response.data) if isinstance(response.data, dict) else {}


def _kind(info: dict[str, Any]) -> ChannelKind:
    if info.get("is_im"):
        return "im"
    if info.get("is_mpim"):
        return "mpim"
    return "private" if info.get("is_private") else "public"

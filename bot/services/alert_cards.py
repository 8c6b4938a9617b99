"""Alert cards drawn from the newest state of their group, outside the group's lock.

A notification only changes the group (and bumps its `version`); `paint` then draws the card when
Slack's budget allows. While a card waits for its turn, more notifications only bump the version
again: the painter draws whatever is newest when it gets there, so a storm of notifications costs
one update per turn, not one per notification, and the card always ends on the last state sent.

One painter per group at a time across replicas (a lease on the group's row, see
`AlertStore.claim_paint`); after giving the lease up it looks at the version once more, so a change
that arrived while it drew (and found the lease taken) is drawn too. The first card carries a
marker; a painter that finds a post was attempted before looks for it before posting again.

Thread replies for changes (new, resolved, firing again) wait as pending events and go out as one
merged reply once the group has been quiet for `settle_seconds` (or has held changes for
`hold_seconds`), within the flapping budget: a storm gets one summary, not a reply per alert.

A sweep (every minute, and at start-up) paints every group whose card or thread is behind, so a
change whose painter died with its replica is drawn by another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import psycopg
from slack_sdk.errors import SlackApiError

from bot.alerts.store import AlertGroup, AlertStore, StoredAlert
from bot.logs import get_logger
from bot.metrics import Metrics
from bot.mrkdwn import clip
from bot.render import alert as render
from bot.slack.client import InstrumentedWebClient, post_marker
from bot.slack.post import PostFailed
from bot.slack.priority import Priority, serving

log = get_logger(__name__)

View = Callable[[AlertGroup, list[StoredAlert]], render.AlertCard]

REPLY_LINES = 30
# A painter that died holding the lease is replaced after this long; a living one renews it while
# its calls wait for Slack's budget.
LEASE_SECONDS = 20.0
RETRY_SECONDS = 5.0


class AlertCards:
    def __init__(
        self,
        store: AlertStore,
        client: InstrumentedWebClient,
        metrics: Metrics,
        view: View,
        *,
        settle_seconds: float = 45.0,
        hold_seconds: float = 600.0,
        flap_posts: int = 5,
        flap_window_s: float = 600.0,
    ) -> None:
        self._store = store
        self._client = client
        self._metrics = metrics
        self._view = view
        self._settle = settle_seconds
        self._hold = hold_seconds
        self._flap_posts = flap_posts
        self._flap_window_s = flap_window_s
        self._dirty: set[int] = set()
        self._painters: dict[int, asyncio.Task[None]] = {}
        self._rounds = asyncio.Condition()
        self._closing = False
        self._ids: dict[str, str] = {}
        self._naming = asyncio.Lock()

    def paint(self, group_id: int) -> None:
        """Have the group's card (and thread) brought up to date; returns at once.

        The painter runs in the caller's context: a person's click is drawn at a person's priority.
        """
        if self._closing:
            return
        self._dirty.add(group_id)
        running = self._painters.get(group_id)
        if running is None or running.done():
            task = asyncio.ensure_future(self._paint(group_id))
            self._painters[group_id] = task
            task.add_done_callback(lambda done: self._painted(group_id, done))

    async def until_drawn(self, group_id: int, version: int, timeout: float) -> AlertGroup | None:  # noqa: ASYNC109
        """The group once its card shows `version` or later, or as it is after `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            _, drawn = await self._store.version(group_id)
            left = deadline - loop.time()
            if drawn >= version or left <= 0:
                return await self._store.get(group_id)
            await self._next_round(min(left, 0.25))

    async def until_posted(self, group_id: int, timeout: float) -> AlertGroup | None:  # noqa: ASYNC109
        """The group once its card exists (the thread diagnoses and links go in), or after `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            group = await self._store.get(group_id)
            if group is None or group.card_ts is not None or loop.time() >= deadline:
                return group
            await self._next_round(min(deadline - loop.time(), 0.25))

    async def _next_round(self, timeout: float) -> None:  # noqa: ASYNC109
        """Until this process's painter finishes a round, or `timeout` (another replica's is polled)."""
        async with self._rounds:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._rounds.wait(), timeout)

    async def sweep(self) -> int:
        """Paint every group whose card or thread is behind; how many."""
        behind = await self._store.unpainted()
        for group_id in behind:
            self.paint(group_id)
        return len(behind)

    async def close(self, grace_seconds: float = 5.0) -> None:
        self._closing = True
        running = [t for t in self._painters.values() if not t.done()]
        if running:
            _, pending = await asyncio.wait(running, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def busy(self) -> int:
        """Groups with a painter at work in this process."""
        return sum(1 for t in self._painters.values() if not t.done())

    # --- one painter per group -----------------------------------------------------------------

    def _painted(self, group_id: int, done: asyncio.Task[None]) -> None:
        if self._painters.get(group_id) is done:
            del self._painters[group_id]
        if not done.cancelled() and done.exception() is not None:
            log.error("alert_card_painter_failed", group_id=group_id, exc_info=done.exception())

    async def _paint(self, group_id: int) -> None:
        while group_id in self._dirty and not self._closing:
            self._dirty.discard(group_id)
            group = await self._store.claim_paint(group_id, LEASE_SECONDS)
            if group is None:
                return  # another painter holds the lease; it looks at the version after releasing it
            renewing = asyncio.ensure_future(self._keep_lease(group_id))
            try:
                drawn, card = await self._draw(group)
                wait = await self._thread(drawn, card)
            except (SlackApiError, PostFailed, TimeoutError, OSError) as exc:
                await self._store.release_paint(group_id)
                log.warning("alert_card_not_drawn", group_id=group_id, error=str(exc))
                asyncio.get_running_loop().call_later(RETRY_SECONDS, self.paint, group_id)
                return
            except BaseException:
                await asyncio.shield(self._store.release_paint(group_id))
                raise
            finally:
                renewing.cancel()
            await self._store.painted(group_id, drawn.version, **card)
            async with self._rounds:
                self._rounds.notify_all()
            if wait is not None:
                asyncio.get_running_loop().call_later(wait, self.paint, group_id)
            version, _ = await self._store.version(group_id)
            if version > drawn.version:
                self._dirty.add(group_id)

    async def _keep_lease(self, group_id: int) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            with suppress(psycopg.Error, OSError):  # the store is away: the lease may lapse, not fail
                await self._store.renew_paint(group_id, LEASE_SECONDS)

    async def _draw(self, group: AlertGroup) -> tuple[AlertGroup, dict[str, str | None]]:
        """Post or update the card if what it shows changed: the group as drawn, and the card
        columns to record.

        An update is drawn again from the newest state when Slack's budget lets it go: in a storm
        it waits about a minute for `chat.update`'s budget, and a card drawn before that wait would
        show a minute-old state and need another minute-long turn to catch up.
        """
        text, blocks = await self._rendered(group)
        digest = render.card_hash(text, blocks)
        channel_id, ts = group.channel_id, group.card_ts
        if ts is None and group.card_claimed:
            found = await self._find_card(group)
            if found is not None:
                channel_id, ts = found
        if ts is None or channel_id is None:
            await self._store.claim_card(group.id)
            # A group nobody has seen yet goes ahead of refreshes of cards people already have.
            with serving(Priority.ANNOUNCE):
                channel_id, ts = await self._post_card(group, text, blocks)
            return group, {"channel_id": channel_id, "card_ts": ts, "card_hash": digest}
        if digest == group.card_hash and ts == group.card_ts:
            return group, {"channel_id": channel_id, "card_ts": ts, "card_hash": digest}
        drawn: list[tuple[AlertGroup, str | None]] = [(group, group.card_hash)]

        async def newest() -> dict[str, Any] | None:
            latest = await self._store.get(group.id) or group
            text, blocks = await self._rendered(latest)
            digest = render.card_hash(text, blocks)
            drawn[0] = (latest, digest)
            if digest == group.card_hash and ts == group.card_ts:
                return None
            return {"text": text, "blocks": blocks}

        await self._client.update_when_due(channel_id, ts, newest)
        latest, shown = drawn[0]
        return latest, {"channel_id": channel_id, "card_ts": ts, "card_hash": shown}

    async def _rendered(self, group: AlertGroup) -> tuple[str, list[dict[str, Any]]]:
        alerts = await self._store.alerts_of(group.id)
        return render.card_text(group), render.card(self._view(group, alerts))

    async def _thread(self, group: AlertGroup, card: dict[str, str | None]) -> float | None:
        """Post the pending changes as one reply once settled; seconds until it may be, or None."""
        pending = await self._store.pending_changes(group.id)
        channel, ts = card.get("channel_id"), card.get("card_ts")
        if not pending or channel is None or ts is None:
            return None
        now = datetime.now(UTC)
        quiet = (now - pending[-1][2]).total_seconds()
        held = (now - pending[0][2]).total_seconds()
        if quiet < self._settle and held < self._hold:
            return min(self._settle - quiet, self._hold - held)
        ids = [event_id for event_id, _, _ in pending]
        if await self._store.posts_since(group.id, self._flap_window_s) >= self._flap_posts:
            await self._store.mark_posted(ids, posted=False)
            await self._store.set_flapping(group.id, True)
            return None
        await self._client.chat_postMessage(channel=channel, thread_ts=ts, text=_merged(pending))
        await self._store.mark_posted(ids, posted=True)
        if group.flapping:
            await self._store.set_flapping(group.id, False)
        return None

    async def _post_card(self, group: AlertGroup, text: str, blocks: list[dict[str, Any]]) -> tuple[str, str]:
        """Post in the route's channel (joining it when public); Slack's answer names its id."""
        marker = post_marker(_post_id(group))
        # By id where it can be found: the channel's posts then share one budget with the thread's.
        channel = group.channel
        with suppress(PostFailed, SlackApiError):
            channel = await self._channel_id(group.channel)
        for attempt in (1, 2):
            try:
                response = await self._client.chat_postMessage(
                    channel=channel, text=text, blocks=blocks, metadata=marker
                )
                return str(response["channel"]), str(response["ts"])
            except SlackApiError as exc:
                error = str(exc.response.get("error"))
                if error != "not_in_channel" or attempt == 2:
                    log.error("alert_card_not_posted", channel=group.channel, error=error)
                    raise PostFailed(error) from None
                await self._client.conversations_join(channel=await self._channel_id(group.channel))
        raise PostFailed("unreachable")

    async def _find_card(self, group: AlertGroup) -> tuple[str, str] | None:
        """The card an earlier painter posted but did not live to record, if Slack has it."""
        channel = group.channel_id or await self._channel_id(group.channel)
        found = await self._client.find_post(channel, None, _post_id(group))
        if found is None:
            return None
        log.info("alert_card_found_again", group_id=group.id)
        return str(found["channel"]), str(found["ts"])

    async def _channel_id(self, channel: str) -> str:
        """conversations.join and history take an id; a route names the channel (`alerts` or `#alerts`)."""
        if channel[:1] in ("C", "G") and channel.isupper():
            return channel
        async with self._naming:  # a storm's first cards in one channel look it up once
            if channel not in self._ids:
                self._ids[channel] = await self._look_up(channel)
        return self._ids[channel]

    async def _look_up(self, channel: str) -> str:
        cursor = None
        while True:
            page = await self._client.conversations_list(cursor=cursor, limit=200, exclude_archived=True)
            for found in page.get("channels") or []:
                if found.get("name") == channel.removeprefix("#"):
                    return str(found["id"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                raise PostFailed("channel_not_found")


def _post_id(group: AlertGroup) -> str:
    return f"alert-card-{group.id}"


def _merged(pending: list[tuple[int, str, datetime]]) -> str:
    lines = [line for _, text, _ in pending for line in text.splitlines() if line.strip()]
    if len(lines) > REPLY_LINES:
        more = len(lines) - REPLY_LINES + 1
        lines = [*lines[: REPLY_LINES - 1], f"… and {more} more changes (see the card)"]
    return clip("\n".join(lines), 3000)

"""Read-side helpers for tests: what is in a channel, a thread, a user's view, and waiting for it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

from localslack.core import Core
from localslack.model import Channel, Ephemeral, File, Message, User, View
from localslack.recorder import ApiCall

T = TypeVar("T")


class Queries:
    """Mixin of LocalSlack; channel and user arguments accept ids, names or #names/@names."""

    _core: Core

    def channel(self, ref: str) -> Channel:
        return self._core.state.channel(ref)

    def user(self, ref: str) -> User:
        return self._core.state.user(ref)

    def messages(self, channel: str) -> list[Message]:
        """Top-level messages (and broadcast replies), oldest first, as the channel shows them."""
        ch = self.channel(channel)
        return [ch.messages[ts] for ts in ch.timeline]

    def last_message(self, channel: str) -> Message | None:
        msgs = self.messages(channel)
        return msgs[-1] if msgs else None

    def message(self, channel: str, ts: str) -> Message:
        ch = self.channel(channel)
        return self._core.state.message(ch, ts)

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """Replies only, oldest first."""
        return self._core.state.replies(self.message(channel, thread_ts))

    def last_reply(self, channel: str, thread_ts: str) -> Message | None:
        replies = self.thread(channel, thread_ts)
        return replies[-1] if replies else None

    def ephemerals(self, user: str, channel: str | None = None) -> list[Ephemeral]:
        uid = self.user(user).id
        cid = self.channel(channel).id if channel else None
        return [
            e
            for e in self._core.state.ephemerals
            if e.user == uid and not e.deleted and (cid is None or e.channel == cid)
        ]

    def files_in(self, channel: str) -> list[File]:
        cid = self.channel(channel).id
        return [f for f in self._core.state.files.values() if cid in f.channels]

    def file_content(self, file_id: str) -> bytes:
        return self._core.state.files[file_id].content

    def pinned(self, channel: str) -> list[Message]:
        ch = self.channel(channel)
        return [ch.messages[p.ts] for p in ch.pins if p.ts in ch.messages]

    def calls(self, method: str | None = None, *, ok: bool | None = None) -> list[ApiCall]:
        return self._core.recorder.calls(method, ok=ok)

    def current_view(self, user: str) -> View | None:
        """The modal on top of the user's stack, if any is open."""
        stack = self._core.state.view_stacks.get(self.user(user).id, [])
        return self._core.state.views[stack[-1]] if stack else None

    def home_view(self, user: str) -> View | None:
        vid = self._core.state.home_views.get(self.user(user).id)
        return self._core.state.views[vid] if vid else None

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 5.0,  # noqa: ASYNC109
        interval: float = 0.01,
    ) -> T:
        """Polls until `predicate()` is truthy and returns its value; bot work happens asynchronously."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            await asyncio.sleep(interval)

"""GET endpoints: what one user sees of the workspace, its channels, threads and open modals."""

from __future__ import annotations

from aiohttp import web

from localslack.ids import ts_key
from localslack.model import JSON, Channel, Ephemeral, User
from localslack.web.context import UiContext
from localslack.web.http import query
from localslack.web.present import (
    channel_json,
    ephemeral_json,
    message_json,
    user_json,
    view_json,
)


class Reads:
    def __init__(self, ctx: UiContext) -> None:
        self._ctx = ctx

    def _ephemerals(self, user: User, ch: Channel, thread_ts: str | None) -> list[Ephemeral]:
        return [
            e
            for e in self._ctx.state.ephemerals
            if e.user == user.id and e.channel == ch.id and e.thread_ts == thread_ts and not e.deleted
        ]

    async def bootstrap(self, request: web.Request) -> JSON:
        state = self._ctx.state
        me = self._ctx.user(query(request, "user"))
        channels = [c for c in state.channels.values() if me.id in c.members and not c.is_archived]
        return {
            "version": self._ctx.core.changes.version,
            "team": {"id": state.team_id, "name": state.team_name, "domain": state.team_domain},
            "me": user_json(me),
            "users": [user_json(u) for u in state.users.values()],
            "channels": [channel_json(state, c, me) for c in channels],
            "all_channels": [
                {"id": c.id, "name": c.name, "is_member": me.id in c.members}
                for c in state.channels.values()
                if not c.is_im and c.visible_to(me)
            ],
            "usergroups": [
                {"id": g.id, "handle": g.handle, "name": g.name, "users": list(g.users)}
                for g in state.usergroups.values()
            ],
            "bot_user_id": state.bot_user_id,
            "bot_name": state.app.bot_name,
            "commands": [c.model_dump() for c in state.app.commands],
        }

    async def messages(self, request: web.Request) -> JSON:
        """Top-level messages oldest first, with the viewer's own ephemeral messages slotted in."""
        state = self._ctx.state
        me = self._ctx.user(query(request, "user"))
        ch = self._ctx.visible_channel(me, request.match_info["channel_id"])
        shown = [message_json(state, ch, ch.messages[ts]) for ts in ch.timeline]
        shown += [ephemeral_json(state, e) for e in self._ephemerals(me, ch, None)]
        shown.sort(key=lambda m: ts_key(m["ts"]))
        return {
            "version": self._ctx.core.changes.version,
            "channel": channel_json(state, ch, me),
            "topic": ch.topic.get("value", ""),
            "pins": [
                {"ts": p.ts, "created_by": p.created_by, "created": p.created}
                for p in ch.pins
                if p.ts in ch.messages
            ],
            "messages": shown,
        }

    async def thread(self, request: web.Request) -> JSON:
        state = self._ctx.state
        me = self._ctx.user(query(request, "user"))
        ch = self._ctx.visible_channel(me, request.match_info["channel_id"])
        parent = state.message(ch, request.match_info["ts"])
        if parent.is_reply and parent.thread_ts is not None:
            parent = state.message(ch, parent.thread_ts)
        replies = [message_json(state, ch, r) for r in state.replies(parent)]
        replies += [ephemeral_json(state, e) for e in self._ephemerals(me, ch, parent.ts)]
        replies.sort(key=lambda m: ts_key(m["ts"]))
        return {
            "version": self._ctx.core.changes.version,
            "channel": channel_json(state, ch, me),
            "parent": message_json(state, ch, parent),
            "replies": replies,
        }

    async def views(self, request: web.Request) -> JSON:
        """The user's modal stack, bottom first: the client shows the last one."""
        state = self._ctx.state
        me = self._ctx.user(query(request, "user"))
        stack = [state.views[v] for v in state.view_stacks.get(me.id, [])]
        return {
            "version": self._ctx.core.changes.version,
            "views": [view_json(v, self._ctx.view_errors.get(v)) for v in stack],
        }

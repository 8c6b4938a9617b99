"""What Slack's servers do on behalf of users: slash commands, clicks, submissions, posts, reactions, pins."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from localslack.compose import compose
from localslack.core import Core
from localslack.delivery import Delivery, Transport
from localslack.errors import SlackError
from localslack.model import JSON, Channel, Ephemeral, Message, User, View
from localslack.payloads import (
    action,
    element_state,
    event_channel,
    event_envelope,
    find_element,
    interaction_base,
    interactive_elements,
    missing_required,
    slash_form,
    view_state,
)
from localslack.responses import ResponseTarget, apply_response
from localslack.signing import Tamper
from localslack.views import parse_view, push_modal, update_view

_STATELESS = {"button", "overflow", "workflow_button"}

_D = TypeVar("_D", bound="Driver")
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _announced(
    action: Callable[Concatenate[_D, _P], Awaitable[_R]],
) -> Callable[Concatenate[_D, _P], Awaitable[_R]]:
    """Live clients re-read the workspace once a user action and the app's answer to it are done."""

    @functools.wraps(action)
    async def run(self: _D, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await action(self, *args, **kwargs)
        finally:
            self._core.changes.bump()

    return run


class DriverError(Exception):
    """An action Slack's own client would not let the user perform."""


class ViewAck(BaseModel):
    """A view_submission ack body (HTTP or socket payload)."""

    model_config = ConfigDict(extra="allow")

    response_action: Literal["errors", "update", "push", "clear"] | None = None
    errors: dict[str, str] | None = None
    view: Any = None


class Driver:
    """Mixin of LocalSlack; every method returns the Delivery describing the app's answer."""

    _core: Core
    _transport: Transport

    def _user(self, ref: str | User) -> User:
        return ref if isinstance(ref, User) else self._core.state.user(ref)

    def _show(self) -> None:
        """The user's own change shows at once, not only after the app has answered the event about it."""
        self._core.changes.bump()

    def _member_channel(self, user: User, ref: str | Channel) -> Channel:
        ch = ref if isinstance(ref, Channel) else self._core.state.channel(ref)
        if user.id not in ch.members:
            raise DriverError(f"{user.name} is not in #{ch.name}")
        return ch

    def _seen_channel(self, user: User, channel_id: str) -> Channel:
        """Guests and outsiders never see channels they are not in, so cannot act on their messages."""
        ch = self._core.state.channel(channel_id)
        if not ch.visible_to(user):
            raise DriverError(f"{user.name} cannot see #{ch.name}")
        return ch

    def new_trigger_id(self, user: str | User) -> str:
        """A fresh trigger_id as an interaction by `user` would carry."""
        return self._core.triggers.issue(self._user(user).id)

    @_announced
    async def slash(
        self, user: str | User, channel: str | Channel, command_line: str, *, tamper: Tamper | None = None
    ) -> Delivery:
        """Runs e.g. "/incident declare p0 db down"; the ack body lands in the channel as Slack shows it."""
        state = self._core.state
        u = self._user(user)
        ch = self._member_channel(u, channel)
        command, _, text = command_line.strip().partition(" ")
        if not command.startswith("/"):
            raise DriverError("a slash command starts with '/'")
        target = ResponseTarget(channel=ch.id, user=u.id)
        d = Delivery(
            kind="slash_commands",
            transport="",
            trigger_id=self._core.triggers.issue(u.id),
            response_url=self._core.response_urls.issue("commands", target),
        )
        form = slash_form(
            state,
            u,
            ch,
            command,
            text.strip(),
            response_url=d.response_url or "",
            trigger_id=d.trigger_id or "",
        )
        await self._transport.send("slash_commands", dict(form), d, tamper=tamper)
        self._settle(d)
        if d.ok and d.ack and any(d.ack.get(k) for k in ("text", "blocks", "attachments")):
            try:
                d.posted = apply_response(state, target, d.ack)
            except (SlackError, ValidationError) as exc:
                d.user_error = exc.code if isinstance(exc, SlackError) else "invalid_ack"
        return d

    @_announced
    async def click(
        self,
        user: str | User,
        target: Message | Ephemeral | View,
        action_id: str,
        value: Any = None,
        *,
        block_id: str | None = None,
        tamper: Tamper | None = None,
    ) -> Delivery:
        """Clicks a button or picks `value` in a select/picker on a message, ephemeral message or view."""
        state = self._core.state
        u = self._user(user)
        blocks = target.blocks or []
        bid, element = find_element(blocks, action_id, block_id)
        d = Delivery(kind="interactive", transport="", trigger_id=self._core.triggers.issue(u.id))
        payload = interaction_base(state, "block_actions", u, d.trigger_id or "")
        values: JSON = (
            {b: dict(v) for b, v in target.state_values.items()} if isinstance(target, View) else {}
        )
        for b, el in interactive_elements(blocks):
            if el.get("type") not in _STATELESS and el.get("action_id"):
                entry = values.setdefault(b, {})
                if el is element or str(el["action_id"]) not in entry:
                    entry[str(el["action_id"])] = element_state(el, value if el is element else None)
        if isinstance(target, View):
            target.state_values = values
            payload["container"] = {"type": "view", "view_id": target.id}
            payload["view"] = target.to_api()
        else:
            ch = self._seen_channel(u, target.channel)
            container: JSON = {
                "type": "message",
                "message_ts": target.ts,
                "channel_id": ch.id,
                "is_ephemeral": isinstance(target, Ephemeral),
            }
            if target.thread_ts:
                container["thread_ts"] = target.thread_ts
            payload["container"] = container
            payload["channel"] = {"id": ch.id, "name": ch.name}
            if isinstance(target, Message):
                payload["message"] = state.api_message(target)
            d.response_url = self._core.response_urls.issue(
                "actions", ResponseTarget(channel=ch.id, user=u.id, source=target)
            )
            payload["response_url"] = d.response_url
        payload["state"] = {"values": values}
        payload["actions"] = [action(bid, element, value)]
        await self._transport.send("interactive", payload, d, tamper=tamper)
        self._settle(d)
        return d

    @_announced
    async def submit_view(
        self,
        user: str | User,
        view: View | str,
        values: Mapping[str, Any] | None = None,
        *,
        tamper: Tamper | None = None,
    ) -> Delivery:
        """Submits a modal; honours the ack's response_action like the Slack client does."""
        state = self._core.state
        u = self._user(user)
        v = view if isinstance(view, View) else state.views[view]
        if v.closed or v.user != u.id:
            raise DriverError(f"view {v.id} is not open for {u.name}")
        current = view_state(v, dict(values or {}))
        missing = missing_required(v, current)
        if missing:
            raise DriverError(f"required inputs left empty: {missing}")
        v.state_values = current
        d = Delivery(kind="interactive", transport="", trigger_id=self._core.triggers.issue(u.id), view=v)
        payload = interaction_base(state, "view_submission", u, d.trigger_id or "")
        payload.update({"view": v.to_api(), "response_urls": []})
        await self._transport.send("interactive", payload, d, tamper=tamper)
        self._settle(d)
        if d.ok:
            self._apply_view_ack(u, v, d)
        return d

    @_announced
    async def close_view(self, user: str | User, view: View | str) -> Delivery:
        """Presses a modal's close button: back to the view below it, or out of the whole stack when
        the view set clear_on_close; the app hears view_closed only if it asked with notify_on_close."""
        state = self._core.state
        u = self._user(user)
        v = view if isinstance(view, View) else state.views[view]
        stack = state.open_view_stack(u.id)
        if v.closed or v.user != u.id or v.id not in stack:
            raise DriverError(f"view {v.id} is not open for {u.name}")
        closing = stack[:] if v.clear_on_close else stack[stack.index(v.id) :]
        for vid in closing:
            state.close_view(state.views[vid])
        if not v.notify_on_close:
            return Delivery(kind="interactive", transport="none")
        d = Delivery(kind="interactive", transport="", view=v)
        payload = interaction_base(state, "view_closed", u, "")
        del payload["trigger_id"]
        payload.update({"view": v.to_api(), "is_cleared": v.clear_on_close})
        await self._transport.send("interactive", payload, d)
        self._settle(d)
        return d

    def _apply_view_ack(self, user: User, view: View, d: Delivery) -> None:
        state = self._core.state
        try:
            ack = ViewAck.model_validate(d.ack or {})
            if ack.response_action == "errors":
                d.view_errors = ack.errors or {}
            elif ack.response_action == "update":
                d.view = update_view(view, parse_view(ack.view))
            elif ack.response_action == "push":
                d.view = push_modal(state, user.id, parse_view(ack.view))
            elif ack.response_action == "clear":
                for vid in list(state.open_view_stack(user.id)):
                    state.close_view(state.views[vid])
            else:
                state.close_view(view)
        except SlackError as exc:
            d.user_error = f"{exc.code}: {exc.messages}"
        except ValidationError:
            d.user_error = "invalid_ack"

    def _settle(self, d: Delivery) -> None:
        if not d.ok:
            d.user_error = "operation_timeout" if d.status is None else "dispatch_failed"

    @_announced
    async def post(
        self,
        user: str | User,
        channel: str | Channel,
        text: str,
        thread_ts: str | None = None,
        *,
        blocks: list[JSON] | None = None,
        reply_broadcast: bool = False,
    ) -> Delivery:
        """Stores a user's message and emits `message` (and `app_mention` when the bot is mentioned)."""
        state = self._core.state
        u = self._user(user)
        ch = self._member_channel(u, channel)
        content = compose(text, blocks, None)
        msg = state.add_message(
            ch,
            user=u.id,
            text=content.text,
            blocks=content.blocks,
            thread_ts=thread_ts,
            reply_broadcast=reply_broadcast,
        )
        self._show()
        event: JSON = {
            "type": "message",
            "channel": ch.id,
            "user": u.id,
            "text": msg.text,
            "ts": msg.ts,
            "event_ts": msg.ts,
            "channel_type": ch.channel_type,
            "team": u.team_id,
            "client_msg_id": str(uuid.uuid4()),
        }
        if ch.is_ext_shared:
            event.update({"user_team": u.team_id, "source_team": u.team_id})
        if msg.blocks:
            event["blocks"] = msg.blocks
        if msg.is_reply:
            event.update({"thread_ts": msg.thread_ts, "parent_user_id": msg.parent_user_id})
        if msg.subtype:
            event["subtype"] = msg.subtype
        deliveries = [await self._emit(event, ch)]
        if f"<@{state.bot_user_id}>" in msg.text:
            keys = ("user", "text", "ts", "channel", "event_ts", "team", "user_team", "source_team")
            mention = {k: event[k] for k in keys if k in event}
            mention["type"] = "app_mention"
            if msg.is_reply:
                mention["thread_ts"] = msg.thread_ts
            deliveries.append(await self._emit(mention, ch))
        d = next((x for x in deliveries if x.transport != "none"), deliveries[0])
        d.ts, d.message = msg.ts, msg
        return d

    def _message_item(self, user: User, message: Message) -> tuple[Channel, Message]:
        ch = self._seen_channel(user, message.channel)
        return ch, self._core.state.message(ch, message.ts)

    async def react(self, user: str | User, message: Message, emoji: str) -> Delivery:
        return await self._reaction(user, message, emoji, added=True)

    async def unreact(self, user: str | User, message: Message, emoji: str) -> Delivery:
        return await self._reaction(user, message, emoji, added=False)

    @_announced
    async def _reaction(self, user: str | User, message: Message, emoji: str, *, added: bool) -> Delivery:
        state = self._core.state
        u = self._user(user)
        ch, msg = self._message_item(u, message)
        name = emoji.strip(":")
        if added:
            state.add_reaction(msg, u.id, name)
        else:
            state.remove_reaction(msg, u.id, name)
        self._show()
        event: JSON = {
            "type": "reaction_added" if added else "reaction_removed",
            "user": u.id,
            "reaction": name,
            "item_user": msg.user,
            "item": {"type": "message", "channel": ch.id, "ts": msg.ts},
            "event_ts": state.ids.ts(),
        }
        return await self._emit(event, ch)

    async def pin(self, user: str | User, message: Message) -> Delivery:
        return await self._pin(user, message, added=True)

    async def unpin(self, user: str | User, message: Message) -> Delivery:
        return await self._pin(user, message, added=False)

    @_announced
    async def _pin(self, user: str | User, message: Message, *, added: bool) -> Delivery:
        state = self._core.state
        u = self._user(user)
        ch, msg = self._message_item(u, message)
        if added:
            pin = state.add_pin(ch, msg, u.id)
            created = pin.created
        else:
            created = next((p.created for p in ch.pins if p.ts == msg.ts), 0)
            state.remove_pin(ch, msg)
        self._show()
        item: JSON = {
            "type": "message",
            "channel": ch.id,
            "created": created,
            "created_by": u.id,
            "message": state.api_message(msg),
        }
        event: JSON = {
            "type": "pin_added" if added else "pin_removed",
            "user": u.id,
            "channel_id": ch.id,
            "item": item,
            "item_user": msg.user,
            "pin_count": len(ch.pins),
            "event_ts": state.ids.ts(),
        }
        if not added:
            event["has_pins"] = bool(ch.pins)
        return await self._emit(event, ch)

    async def join(self, user: str | User, channel: str | Channel) -> Delivery:
        """The user joins a public channel, as from Slack's "Join channel" button."""
        state = self._core.state
        u = self._user(user)
        ch = channel if isinstance(channel, Channel) else state.channel(channel)
        if u.is_guest or state.is_external(u):
            # Slack answers a guest's or an outsider's join with user_is_restricted; they must be invited.
            raise DriverError(f"{u.name} is a guest or from another org and cannot join #{ch.name}")
        if ch.is_private or ch.is_im or ch.is_archived:
            raise DriverError(f"#{ch.name} cannot be joined")
        if u.id not in ch.members:
            ch.members.append(u.id)
        event: JSON = {
            "type": "member_joined_channel",
            "user": u.id,
            "channel": ch.id,
            "channel_type": ch.channel_type,
            "team": state.team_id,
        }
        d = await self._emit(event, ch)
        self._core.changes.bump()
        return d

    async def send_event(self, event: JSON, *, tamper: Tamper | None = None) -> Delivery:
        """Delivers any event as-is (adds event_ts when missing); subscriptions are not checked."""
        state = self._core.state
        event = {"event_ts": state.ids.ts(), **event}
        d = Delivery(kind="events_api", transport="", event_id=state.ids.event_id())
        envelope = event_envelope(state, event, d.event_id or "", event_channel(state, event))
        await self._transport.send("events_api", envelope, d, tamper=tamper)
        return d

    async def _emit(self, event: JSON, channel: Channel) -> Delivery:
        """Slack only sends channel events the app subscribed to, from channels its bot is in."""
        app = self._core.state.app
        if event["type"] not in app.bot_events or app.bot_user_id not in channel.members:
            return Delivery(kind="events_api", transport="none", user_error="not_subscribed")
        return await self.send_event(event)

    async def replay_last(self, *, to: str | None = None) -> Delivery:
        """Re-sends the previous HTTP delivery unchanged, as a replay attacker would.

        `to` sends the copy to another request URL: a retry landing on a second replica.
        """
        return await self._transport.replay_last(to=to)

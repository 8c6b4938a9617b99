"""POST endpoints: a user acting in the page, carried out by the driver exactly as Slack's servers would."""

from __future__ import annotations

from collections.abc import Awaitable

from aiohttp import web

from localslack.delivery import Delivery
from localslack.driver import DriverError
from localslack.errors import SlackError
from localslack.model import JSON, Ephemeral, Message, User, View
from localslack.payloads import missing_required, view_state
from localslack.state import NotFound
from localslack.web.bodies import (
    ClickBody,
    CommandBody,
    Container,
    JoinBody,
    MessageBody,
    PinBody,
    ReactionBody,
    SubmitBody,
    UserBody,
)
from localslack.web.context import UiContext
from localslack.web.encode import encode
from localslack.web.http import UiError, read_body
from localslack.webapi.reactions_pins import emoji_name

REQUIRED_FIELD = "Please complete this required field."


class Actions:
    def __init__(self, ctx: UiContext) -> None:
        self._ctx = ctx

    async def _act(self, action: Awaitable[Delivery], *, answered: bool = True) -> Delivery:
        """Runs a driver action; `answered` means the app's failure to answer is the user's problem too
        (Slack shows "dispatch_failed" for a command, not for a message the app missed)."""
        try:
            d = await action
        except (NotFound, KeyError, IndexError):
            # Missing users/channels are 404s; a bare KeyError is a bug, not a stale element.
            raise
        except SlackError as exc:
            raise UiError(exc.code) from None
        except DriverError as exc:
            raise UiError(str(exc)) from None
        except LookupError as exc:
            # The element was there when the page rendered; the app has since replaced the message.
            raise UiError("element_not_found", detail=str(exc)) from None
        if answered and d.user_error:
            raise UiError(d.user_error)
        return d

    async def command(self, request: web.Request) -> JSON:
        body = await read_body(request, CommandBody)
        state = self._ctx.state
        user = self._ctx.user(body.user)
        command, _, rest = body.text.strip().partition(" ")
        known = {c.command for c in state.app.commands}
        if known and command not in known:
            raise UiError("invalid_command", detail=f"{command} is not a valid command.")
        line = f"{command} {encode(state, user, rest.strip(), labelled=True)}".rstrip()
        await self._act(self._ctx.driver.slash(user, body.channel, line))
        return {}

    async def message(self, request: web.Request) -> JSON:
        body = await read_body(request, MessageBody)
        user = self._ctx.user(body.user)
        text = encode(self._ctx.state, user, body.text)
        d = await self._act(
            self._ctx.driver.post(user, body.channel, text, body.thread_ts or None), answered=False
        )
        return {"ts": d.ts}

    def _target(self, user: User, container: Container) -> Message | Ephemeral | View:
        state = self._ctx.state
        if container.type == "view":
            return self._ctx.open_view(user, container.view_id or "")
        if container.type == "ephemeral":
            for eph in state.ephemerals:
                if eph.ts == container.ephemeral_id and eph.user == user.id and not eph.deleted:
                    return eph
            raise NotFound("message_not_found", container.ephemeral_id or "")
        ch = self._ctx.visible_channel(user, container.channel or "")
        return state.message(ch, container.ts or "")

    async def click(self, request: web.Request) -> JSON:
        body = await read_body(request, ClickBody)
        user = self._ctx.user(body.user)
        target = self._target(user, body.container)
        await self._act(
            self._ctx.driver.click(user, target, body.action_id, body.value, block_id=body.block_id)
        )
        return {}

    async def submit_view(self, request: web.Request) -> JSON:
        """Like Slack's client: empty required inputs are flagged without asking the app."""
        body = await read_body(request, SubmitBody)
        user = self._ctx.user(body.user)
        view = self._ctx.open_view(user, request.match_info["view_id"])
        try:
            missing = missing_required(view, view_state(view, dict(body.values)))
        except LookupError as exc:
            raise UiError("invalid_values", 400, detail=str(exc)) from None
        if missing:
            errors = dict.fromkeys(missing, REQUIRED_FIELD)
            self._ctx.view_errors.set(view, errors)
            return {"view_errors": errors}
        d = await self._act(self._ctx.driver.submit_view(user, view, dict(body.values)))
        if d.view_errors:
            self._ctx.view_errors.set(view, d.view_errors)
            return {"view_errors": d.view_errors}
        self._ctx.view_errors.clear(view)
        stack = self._ctx.state.view_stacks.get(user.id, [])
        return {"view_errors": None, "view_id": stack[-1] if stack else None}

    async def close_view(self, request: web.Request) -> JSON:
        body = await read_body(request, UserBody)
        user = self._ctx.user(body.user)
        view = self._ctx.open_view(user, request.match_info["view_id"])
        await self._act(self._ctx.driver.close_view(user, view), answered=False)
        self._ctx.view_errors.clear(view)
        return {}

    async def reaction(self, request: web.Request) -> JSON:
        body = await read_body(request, ReactionBody)
        user = self._ctx.user(body.user)
        ch = self._ctx.visible_channel(user, body.channel)
        msg = self._ctx.state.message(ch, body.ts)
        try:
            name = emoji_name(body.name)
        except SlackError as exc:
            raise UiError(exc.code) from None
        driver = self._ctx.driver
        action = driver.react(user, msg, name) if body.add else driver.unreact(user, msg, name)
        await self._act(action, answered=False)
        return {}

    async def join(self, request: web.Request) -> JSON:
        body = await read_body(request, JoinBody)
        user = self._ctx.user(body.user)
        ch = self._ctx.visible_channel(user, body.channel)
        await self._act(self._ctx.driver.join(user, ch), answered=False)
        return {}

    async def pin(self, request: web.Request) -> JSON:
        body = await read_body(request, PinBody)
        user = self._ctx.user(body.user)
        ch = self._ctx.visible_channel(user, body.channel)
        msg = self._ctx.state.message(ch, body.ts)
        driver = self._ctx.driver
        await self._act(driver.pin(user, msg) if body.add else driver.unpin(user, msg), answered=False)
        return {}

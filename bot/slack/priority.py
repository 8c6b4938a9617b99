"""Who is waiting for a Web API call: a person, or nobody in particular.

The outbound scheduler serves a waiting person first. What a call is for is known where the work
starts, not where the call is made, so it travels in a context variable: a Slack delivery from a
person (a command, a click, a modal) marks everything done for it as `PERSON`; an alert marks its
work `BULK`; the rest (timers, announcements, schedules) is `ANNOUNCE`. Tasks started for a
delivery inherit the mark, as asyncio copies the context into them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import IntEnum
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.slack.delivery import context_fields


class Priority(IntEnum):
    """Lower goes first."""

    PERSON = 0
    ANNOUNCE = 1
    BULK = 2


_current: ContextVar[Priority] = ContextVar("opsbot_outbound_priority", default=Priority.ANNOUNCE)

# Answers only ever meant for the person in front of them, whoever makes the call.
PERSONAL_METHODS = frozenset({"chat.postEphemeral", "views.open", "views.push", "views.update"})
# A delivery with someone waiting on the other side of it; events (a 📌, a message) are not.
PERSON_KINDS = frozenset({"block_actions", "view_submission", "view_closed", "shortcut", "message_action"})


def current() -> Priority:
    return _current.get()


def for_call(method: str) -> Priority:
    return Priority.PERSON if method in PERSONAL_METHODS else _current.get()


@contextmanager
def serving(priority: Priority) -> Iterator[None]:
    """Mark the Web API calls made inside (and in tasks started inside) with `priority`."""
    token = _current.set(priority)
    try:
        yield
    finally:
        _current.reset(token)


Next = Callable[[], Awaitable[None]]


def person_first_middleware(
    person_in: Callable[[str], None],
) -> Callable[[AsyncBoltRequest, dict[str, Any], Next], Awaitable[BoltResponse | None]]:
    """Bolt global middleware: a command, click or modal from a person is served first, and the
    channel it came from is where people are (`person_in`, the scheduler's).

    The priority is set for the rest of this delivery's context (not reset): Bolt runs the listener
    in a task started after the middleware returns, and that task copies the context it is started in.
    """

    async def person_first(req: AsyncBoltRequest, body: dict[str, Any], next: Next) -> BoltResponse | None:
        person = "command" in body or body.get("type") in PERSON_KINDS
        # Set either way: a Socket Mode connection may handle several deliveries in one context.
        _current.set(Priority.PERSON if person else Priority.ANNOUNCE)
        channel = context_fields(body).get("slack_channel") if person else None
        if channel:
            person_in(channel)
        await next()
        return None

    return person_first

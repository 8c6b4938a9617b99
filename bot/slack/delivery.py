"""What arrives from Slack before any listener runs: what kind it is, who sent it, seen before?

`delivery_key` names a delivery so a retry or a Socket Mode redelivery of the same thing maps to
the same key; the dedupe middleware answers 200 to the second copy without running anything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.coordination import Coordinator
from bot.metrics import Metrics


def delivery_kind(body: dict[str, Any]) -> str:
    """A short label for metrics and logs: command, block_actions, event:reaction_added…"""
    if "command" in body:
        return "command"
    kind = str(body.get("type") or "unknown")
    if kind == "event_callback":
        event = body.get("event") or {}
        return f"event:{event.get('type', 'unknown')}" if isinstance(event, dict) else "event:unknown"
    return kind


def delivery_key(body: dict[str, Any]) -> str | None:
    """A key that is the same for every copy Slack sends of one delivery, or None if not deduplicated."""
    if body.get("type") == "event_callback" and body.get("event_id"):
        return f"event:{body['event_id']}"
    trigger = body.get("trigger_id")
    if trigger:
        return f"{delivery_kind(body)}:{trigger}"
    return None


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Typed(_Open):
    type: str


class Envelope(_Open):
    """The parts of a delivery that Bolt indexes without checking (`body["view"]["type"]`,
    `body["actions"][0]`, `body["event"]["type"]`), even in its own error path: when present, they
    must have the shape Slack gives them, or the delivery is refused as malformed before dispatch."""

    type: str | None = None
    event: _Typed | None = None
    view: _Typed | None = None
    actions: list[_Open] | None = Field(None, min_length=1)


def malformed(body: dict[str, Any]) -> str | None:
    """Why Bolt cannot be handed this delivery, or None when it can."""
    try:
        Envelope.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        return f"{'.'.join(str(part) for part in first['loc'])}: {first['msg']}"
    return None


def drop_nul_characters(body: dict[str, Any]) -> None:
    """Remove NUL characters from every string of a delivery, in place.

    PostgreSQL text cannot hold NUL, so one typed into a command, a modal or a message would make
    the write that records it (an incident title, a note, a reason) fail; it means nothing in Slack.
    """
    stack: list[Any] = [body]  # not recursive: an unauthenticated body may nest deeply
    while stack:
        node = stack.pop()
        for key in list(node) if isinstance(node, dict) else range(len(node)):
            value = node[key]
            if isinstance(value, str) and "\x00" in value:
                node[key] = value.replace("\x00", "")
            elif isinstance(value, dict | list):
                stack.append(value)


def context_fields(body: dict[str, Any]) -> dict[str, str]:
    """Slack ids worth binding to every log line of this request."""
    fields: dict[str, str] = {"kind": delivery_kind(body)}
    team = body.get("team_id") or _id(body.get("team"))
    user = body.get("user_id") or _id(body.get("user"))
    channel = body.get("channel_id") or _id(body.get("channel"))
    event = body.get("event")
    if isinstance(event, dict):
        user = user or event.get("user")
        channel = channel or event.get("channel") or _id(event.get("item"), "channel")
    for name, value in (("slack_team", team), ("slack_user", user), ("slack_channel", channel)):
        if value:
            fields[name] = str(value)
    if body.get("command"):
        fields["command"] = str(body["command"])
    return fields


def _id(value: object, key: str = "id") -> str | None:
    return str(value[key]) if isinstance(value, dict) and value.get(key) else None


Next = Callable[[], Awaitable[None]]


def dedupe_middleware(
    coordinator: Coordinator, metrics: Metrics, ttl_seconds: int
) -> Callable[[AsyncBoltRequest, dict[str, Any], Next], Awaitable[BoltResponse | None]]:
    """Bolt global middleware: the first copy of a delivery runs, later copies get a bare 200."""

    async def dedupe(req: AsyncBoltRequest, body: dict[str, Any], next: Next) -> BoltResponse | None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**context_fields(body))
        key = delivery_key(body)
        if key is not None and not await coordinator.first_delivery(key, ttl_seconds):
            metrics.duplicate_deliveries.labels(delivery_kind(body)).inc()
            retries = req.headers.get("x-slack-retry-num") or []
            structlog.get_logger(__name__).info(
                "duplicate_delivery_dropped", key=key, retry_num=retries[0] if retries else None
            )
            return BoltResponse(status=200, body="")
        await next()
        return None

    return dedupe

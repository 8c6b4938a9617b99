"""Admission for every delivery: a Bolt global middleware that keeps guests, people of other
organisations and externally shared channels out of every command, click, form and event.

A refused command is answered with its ephemeral in the ack itself; a refused click or form is
acked with an empty 200 and told ephemerally right after; a refused event is acked 200 (so Slack does
not retry it) and dropped. The listener is never called, and the gate audits the refusal.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.access.gate import AccessGate, Refusal
from bot.commands import CommandCatalogue
from bot.slack.asker import asker_of, tell
from bot.slack.delivery import context_fields
from bot.tasks import TaskTracker

Next = Callable[[], Awaitable[None]]
AdmissionMiddleware = Callable[[dict[str, Any], Next], Awaitable[BoltResponse | None]]


def admission_middleware(
    gate: AccessGate, client: AsyncWebClient, tasks: TaskTracker, commands: CommandCatalogue
) -> AdmissionMiddleware:
    """Bolt global middleware: admit the delivery's person and channel, or answer the refusal."""

    async def admit(body: dict[str, Any], next: Next) -> BoltResponse | None:
        fields = context_fields(body)
        user = fields.get("slack_user")
        if not user or unhandled(body, commands):  # nobody to judge, or nothing will run: let Bolt say so
            await next()
            return None
        channel = fields.get("slack_channel")
        try:
            await gate.admit(
                user, channel, subject_of(body), ext_shared=bool(body.get("is_ext_shared_channel"))
            )
        except Refusal as refusal:
            return _answer(body, refusal, client, tasks)
        await next()
        return None

    return admit


def unhandled(body: dict[str, Any], commands: CommandCatalogue) -> bool:
    """Shapes no listener takes (Bolt answers them "unhandled"): not worth a Slack lookup. Anything
    else with a user is judged, including kinds this list does not know (fail closed)."""
    if body.get("command"):
        return commands.get(str(body["command"])) is None
    kind = body.get("type")
    if kind == "block_actions":
        return not body.get("actions")
    if kind in ("view_submission", "view_closed"):
        return not isinstance(body.get("view"), dict)
    if kind == "event_callback":
        return not isinstance(body.get("event"), dict)
    return False


def subject_of(body: dict[str, Any]) -> str:
    """What was attempted, for the audit row: the command and its verb, the button, the form, the event."""
    if body.get("command"):
        verb = str(body.get("text") or "").split(maxsplit=1)[:1]
        words = [str(body["command"]), *(w for w in verb if w.replace("-", "").replace(".", "").isalnum())]
        return " ".join(words)[:200]
    actions = body.get("actions")
    if isinstance(actions, list) and actions and isinstance(actions[0], dict):
        return str(actions[0].get("action_id") or "action")
    view = body.get("view")
    if isinstance(view, dict) and view.get("callback_id"):
        return str(view["callback_id"])
    event = body.get("event")
    if isinstance(event, dict):
        return f"event:{event.get('type')}"
    return str(body.get("callback_id") or body.get("type") or "delivery")


def _answer(
    body: dict[str, Any], refusal: Refusal, client: AsyncWebClient, tasks: TaskTracker
) -> BoltResponse:
    if body.get("command"):
        answer = json.dumps({"response_type": "ephemeral", "text": refusal.message})
        return BoltResponse(status=200, body=answer, headers={"content-type": "application/json"})
    asker = asker_of(body)
    if asker is not None:
        tasks.spawn(tell(client, asker, refusal.message), name="access:refused")
    return BoltResponse(status=200, body="")

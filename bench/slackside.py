"""The Slack side of the load benchmark: a workspace of on-call engineers in localslack, payloads
built the way localslack builds them, and hooks that tell the load generator when a reply lands.

localslack runs in the load generator's process, so its cost is the generator's: `indexed_history`
keeps the one lookup that grows with the channel (history at one exact ts, done for every 📌)
from stalling the generator's clock as the P0 channel fills up.

localslack's driver records every delivery and applies every ack to the workspace; at 100,000
requests that bookkeeping would be the benchmark's own cost. So the load generator builds payloads
with `localslack.payloads` and hands them to the emulator's Socket Mode hub and response-URL
issuer directly; `_core` is reached only here.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from bench.loadgen import ACK_WINDOW_S, Completions
from localslack import LocalSlack, Message, UserSeed, WorkspaceSeed
from localslack.config import ChannelSeed, UserGroupSeed
from localslack.core import Core
from localslack.model import JSON
from localslack.payloads import event_envelope, interaction_base, slash_form
from localslack.recorder import ApiCall
from localslack.responses import ResponseTarget
from localslack.webapi.registry import METHODS, Call

STORM_USERS = 200
_ASKED_BY = re.compile(r"asked by <@([UW][A-Z0-9]+)>")
_APPROVED_BY = re.compile(r"approved by <@([UW][A-Z0-9]+)>")


def storm_user(i: int) -> str:
    return f"U0ONCALL{i:03d}"


def storm_seed(bot_events: list[str], approvers: list[str]) -> WorkspaceSeed:
    """The demo workspace plus 200 on-call engineers, all in #incident-response; `approvers` may approve."""
    base = WorkspaceSeed()
    users = [
        UserSeed(id=storm_user(i), name=f"oncall{i:03d}", real_name=f"On-call {i:03d}", title="Engineer")
        for i in range(STORM_USERS)
    ]
    everyone = [u.id for u in users]
    channels = [
        ChannelSeed(**{**c.model_dump(), "members": [*c.members, *everyone]})
        if c.name == "incident-response"
        else c
        for c in base.channels
    ]
    groups = [
        UserGroupSeed(**{**g.model_dump(), "users": [*g.users, *approvers]}) if g.handle == "approvers" else g
        for g in base.usergroups
    ]
    return base.model_copy(
        update={
            "app": base.app.model_copy(update={"bot_events": bot_events}),
            "users": [*base.users, *users],
            "channels": channels,
            "usergroups": groups,
        }
    )


def _core(slack: LocalSlack) -> Core:
    core: Core = slack._core  # see the module docstring
    return core


class Payloads:
    """Slash commands, button clicks and events exactly as localslack's driver would build them."""

    def __init__(self, slack: LocalSlack) -> None:
        self._slack = slack
        self._state = slack.state

    def slash(self, user: str, channel: str, command: str, text: str) -> dict[str, str]:
        u, ch = self._state.user(user), self._state.channel(channel)
        response_url = _core(self._slack).response_urls.issue(
            "commands", ResponseTarget(channel=ch.id, user=u.id)
        )
        return slash_form(
            self._state,
            u,
            ch,
            command,
            text,
            response_url=response_url,
            trigger_id=self._slack.new_trigger_id(u.id),
        )

    def click(self, user: str, message: Message, action_id: str) -> JSON:
        """A block_actions payload for the button `action_id` on `message`."""
        u = self._state.user(user)
        ch = self._state.channel(message.channel)
        block_id, element = next(
            (str(b.get("block_id", "")), e)
            for b in message.blocks or []
            if b.get("type") == "actions"
            for e in b.get("elements", [])
            if e.get("action_id") == action_id
        )
        payload = interaction_base(self._state, "block_actions", u, self._slack.new_trigger_id(u.id))
        payload["container"] = {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": ch.id,
            "is_ephemeral": False,
        }
        payload["channel"] = {"id": ch.id, "name": ch.name}
        payload["message"] = self._state.api_message(message)
        payload["response_url"] = _core(self._slack).response_urls.issue(
            "actions", ResponseTarget(channel=ch.id, user=u.id, source=message)
        )
        payload["state"] = {"values": {}}
        act: JSON = {
            "action_id": action_id,
            "block_id": block_id,
            "type": "button",
            "text": element.get("text"),
            "action_ts": f"{time.time():.6f}",
        }
        if "value" in element:
            act["value"] = element["value"]
        payload["actions"] = [act]
        return payload

    def reaction(self, user: str, message: Message, emoji: str) -> JSON:
        event: JSON = {
            "type": "reaction_added",
            "user": self._state.user(user).id,
            "reaction": emoji,
            "item_user": message.user,
            "item": {"type": "message", "channel": message.channel, "ts": message.ts},
            "event_ts": self._state.ids.ts(),
        }
        return event_envelope(self._state, event, self._state.ids.event_id())


def socket_deliver(slack: LocalSlack) -> Any:
    """A `SocketDeliver` over the emulator's hub: one envelope, Slack's ack window."""
    hub = _core(slack).sockets

    async def deliver(kind: str, payload: dict[str, Any], accepts: bool) -> dict[str, Any] | None:
        ack = await hub.deliver(
            kind,
            payload,
            accepts_response_payload=accepts,
            retry_attempt=0,
            retry_reason="",
            window=ACK_WINDOW_S,
        )
        if ack is None:
            raise TimeoutError
        return ack.payload

    return deliver


def reply_key(user: str) -> str:
    return f"reply:{user}"


@asynccontextmanager
async def watch_replies(slack: LocalSlack, completions: Completions | None) -> AsyncIterator[None]:
    """While open, reports each reply the app makes to a person as it reaches the emulator's Web API.

    A reply is an ephemeral message to someone, a card that says who asked for it ("asked by"), or
    the first redraw of an approval card naming who approved it. Each lands under `reply_key(user)`.
    """
    if completions is None:
        yield
        return
    recorder = slack.recorder
    original = recorder.record_call
    redrawn: set[str] = set()

    def record_call(call: ApiCall) -> None:
        original(call)
        if not call.ok:
            return
        args = call.args
        if call.method == "chat.postEphemeral":
            completions.landed(reply_key(str(args.get("user"))))
        elif call.method == "chat.postMessage":
            found = _ASKED_BY.search(str(args.get("blocks") or ""))
            if found:
                completions.landed(reply_key(found.group(1)))
        elif call.method == "chat.update":
            found = _APPROVED_BY.search(str(args.get("blocks") or ""))
            ts = str(args.get("ts"))
            if found and ts not in redrawn:
                redrawn.add(ts)
                completions.landed(reply_key(found.group(1)))

    recorder.record_call = record_call  # type: ignore[method-assign]
    try:
        yield
    finally:
        recorder.record_call = original  # type: ignore[method-assign]


@contextmanager
def indexed_history() -> Iterator[None]:
    """While open, `conversations.history` for one exact ts (oldest == latest, inclusive) is a
    dictionary lookup, as it is for Slack, instead of a scan of the whole channel; any other
    history call, or a ts not found that way, is answered by localslack's own implementation."""
    spec = METHODS["conversations.history"]
    scan = spec.handler

    def history(call: Call) -> JSON:
        ts = call.get("oldest")
        if not ts or ts != call.get("latest") or not call.flag("inclusive") or call.get("cursor"):
            return scan(call)
        ch = call.channel(member=True)
        msg = ch.messages.get(ts)
        if msg is None or (msg.is_reply and msg.subtype != "thread_broadcast"):
            return scan(call)
        return {
            "messages": [call.state.api_message(msg)],
            "has_more": False,
            "pin_count": len(ch.pins),
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": ""},
        }

    METHODS["conversations.history"] = dataclasses.replace(spec, handler=history)
    try:
        yield
    finally:
        METHODS["conversations.history"] = spec

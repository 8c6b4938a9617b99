"""Raw HTTP requests to the bot's /slack/events, built and signed (or mis-signed) by hand.

The emulator's driver only sends what Slack would send; an impostor on the network sends anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from localslack import LocalSlack

FORM = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"


@dataclass(frozen=True)
class Body:
    data: bytes
    content_type: str | None


def sign(secret: str, body: bytes, timestamp: int | str | None = None) -> dict[str, str]:
    """Slack's v0 signature, over the raw bytes (so undecodable bodies can be signed too)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


def form(fields: Mapping[str, str]) -> Body:
    return Body(urlencode(fields).encode(), FORM)


def interaction(payload: Mapping[str, Any]) -> Body:
    return Body(urlencode({"payload": json.dumps(payload)}).encode(), FORM)


def event(envelope: Mapping[str, Any]) -> Body:
    return Body(json.dumps(envelope).encode(), JSON_TYPE)


def slash_command(slack: LocalSlack, user: str, channel: str, command: str, text: str) -> Body:
    """A slash command form as Slack would send it for `user` typing `command text` in `channel`."""
    u, ch = slack.user(user), slack.channel(channel)
    return form(
        {
            "token": slack.state.app.verification_token,
            "team_id": slack.team_id,
            "team_domain": slack.state.team_domain,
            "channel_id": ch.id,
            "channel_name": ch.name,
            "user_id": u.id,
            "user_name": u.name,
            "command": command,
            "text": text,
            "api_app_id": slack.app_id,
            "is_enterprise_install": "false",
            "response_url": f"{slack.url}/hooks/commands/{slack.team_id}/0/never-issued",
            "trigger_id": slack.new_trigger_id(user),
        }
    )


def _base(slack: LocalSlack, kind: str, user: str) -> dict[str, Any]:
    u = slack.user(user)
    return {
        "type": kind,
        "user": {"id": u.id, "username": u.name, "name": u.name, "team_id": slack.team_id},
        "api_app_id": slack.app_id,
        "token": slack.state.app.verification_token,
        "trigger_id": slack.new_trigger_id(user),
        "team": {"id": slack.team_id, "domain": slack.state.team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
    }


def button_click(
    slack: LocalSlack, user: str, channel: str, action_id: str, value: str, **extra: Any
) -> dict[str, Any]:
    """A block_actions payload for a click on a button the bot never posted."""
    ch = slack.channel(channel)
    payload = _base(slack, "block_actions", user)
    payload.update(
        {
            "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": ch.id},
            "channel": {"id": ch.id, "name": ch.name},
            "message": {"ts": "1700000000.000100", "text": "", "blocks": []},
            "response_url": f"{slack.url}/hooks/actions/{slack.team_id}/0/never-issued",
            "state": {"values": {}},
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "forged",
                    "type": "button",
                    "value": value,
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
    )
    payload.update(extra)
    return payload


def declare_submission(slack: LocalSlack, user: str, channel: str, title: str) -> dict[str, Any]:
    """A view_submission of the incident declaration form, as if the bot had opened it."""
    payload = _base(slack, "view_submission", user)
    payload["view"] = {
        "id": "VFORGED",
        "type": "modal",
        "callback_id": "incident_declare_view",
        "private_metadata": json.dumps({"channel": slack.channel(channel).id}),
        "state": {
            "values": {
                "severity": {
                    "severity": {"type": "static_select", "selected_option": {"value": "p2"}},
                },
                "title": {"title": {"type": "plain_text_input", "value": title}},
            }
        },
    }
    payload["response_urls"] = []
    return payload


def mention_event(slack: LocalSlack, user: str, channel: str, event_id: str) -> dict[str, Any]:
    """An app_mention of the bot in a message that is in the channel (the bot replies in its thread)."""
    text = f"<@{slack.bot_user_id}> hello"
    message = slack.state.add_message(slack.channel(channel), user=slack.user(user).id, text=text)
    return {
        "token": slack.state.app.verification_token,
        "team_id": slack.team_id,
        "api_app_id": slack.app_id,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": {
            "type": "app_mention",
            "user": slack.user(user).id,
            "text": text,
            "ts": message.ts,
            "channel": slack.channel(channel).id,
        },
    }


async def post(url: str, body: Body, headers: Mapping[str, str]) -> tuple[int, str]:
    sent = dict(headers)
    if body.content_type is not None:
        sent["Content-Type"] = body.content_type
    async with (
        aiohttp.ClientSession(trust_env=False, skip_auto_headers=["Content-Type"]) as session,
        session.post(url, data=body.data, headers=sent) as response,
    ):
        return response.status, await response.text()

"""A small, unmodified-bolt incident app used by the end-to-end tests over HTTP and Socket Mode."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond, AsyncSay
from slack_sdk.web.async_client import AsyncWebClient

DECLARE_MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "declare",
    "title": {"type": "plain_text", "text": "Declare incident"},
    "submit": {"type": "plain_text", "text": "Declare"},
    "blocks": [
        {
            "type": "input",
            "block_id": "title",
            "label": {"type": "plain_text", "text": "Title"},
            "element": {"type": "plain_text_input", "action_id": "title"},
        },
        {
            "type": "input",
            "block_id": "severity",
            "label": {"type": "plain_text", "text": "Severity"},
            "element": {
                "type": "static_select",
                "action_id": "severity",
                "options": [
                    {"text": {"type": "plain_text", "text": s.upper()}, "value": s}
                    for s in ("p0", "p1", "p2")
                ],
            },
        },
    ],
}


def incident_buttons(text: str) -> list[dict[str, Any]]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "actions",
            "block_id": "incident_actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "ack_incident",
                    "text": {"type": "plain_text", "text": "Acknowledge"},
                    "value": "inc-1",
                    "style": "primary",
                }
            ],
        },
    ]


def install(app: AsyncApp, seen: dict[str, Any]) -> None:
    @app.command("/incident")
    async def incident(
        ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack(f"Declaring: {command['text']}")
        seen["command"] = command
        await respond(
            response_type="in_channel", text="Incident declared", blocks=incident_buttons("*Incident*")
        )
        await client.views_open(trigger_id=command["trigger_id"], view=DECLARE_MODAL)

    @app.command("/ping")
    async def ping(ack: AsyncAck, command: dict[str, Any]) -> None:
        seen.setdefault("pings", []).append(command["text"])
        await ack("pong")

    @app.action("ack_incident")
    async def acknowledge(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, say: AsyncSay) -> None:
        await ack()
        seen["action_body"] = body
        await respond(replace_original=True, text=f"Acknowledged by <@{body['user']['id']}>")
        await say(text="On it", thread_ts=body["message"]["ts"])

    @app.view("declare")
    async def declare(ack: AsyncAck, view: dict[str, Any], client: AsyncWebClient) -> None:
        values = view["state"]["values"]
        title = values["title"]["title"]["value"]
        severity = values["severity"]["severity"]["selected_option"]["value"]
        if len(title) < 4:
            await ack(response_action="errors", errors={"title": "Too vague"})
            return
        await ack()
        await client.chat_postMessage(channel="C0INCIDENT", text=f"{severity}: {title}")

    @app.event("reaction_added")
    async def reacted(event: dict[str, Any], say: AsyncSay, request: Any) -> None:
        seen.setdefault("retry_nums", []).append(request.headers.get("x-slack-retry-num", ["0"])[0])
        if seen.get("slow_first_event") and len(seen["retry_nums"]) == 1:
            await asyncio.sleep(seen["slow_first_event"])
            return
        await say(f"saw :{event['reaction']}:")

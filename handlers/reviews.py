"""Review drafts in Slack: `/incident postmortem`, "Draft review" on resolve, edit and regenerate."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands import CommandCatalogue, SlashCommand
from bot.incidents.store import Incident
from bot.logs import get_logger
from bot.postmortem.facts import Edits
from bot.postmortem.history import HistoryError
from bot.render import incident as incident_render
from bot.runbooks.catalogue import Catalogue
from bot.runtime import Runtime
from bot.services.reviews import ReviewError

log = get_logger(__name__)

REGENERATE = "review_regenerate"
EDIT = "review_edit"
EDIT_VIEW = "review_edit_view"
FIELDS = (
    ("summary", "Summary"),
    ("impact", "Impact (anything beyond duration and services)"),
    ("users_affected", "Users affected"),
    ("root_cause", "Root cause"),
)
SCOPES = ("files:write", "channels:history", "users:read")
EVENTS: tuple[str, ...] = ()


def slash_commands(runbooks: Catalogue) -> list[SlashCommand]:
    return []


async def publish_review(runtime: Runtime, client: AsyncWebClient, incident: Incident, user: str) -> None:
    """Generate a new version, upload it to the incident channel, and post what is still to fill."""
    assert incident.channel_id is not None
    try:
        version, markdown, missing = await runtime.reviews.generate(incident.id, user)
    except (ReviewError, HistoryError) as exc:
        await client.chat_postEphemeral(channel=incident.channel_id, user=user, text=f"No draft: {exc}")
        return
    try:
        await client.files_upload_v2(
            channel=incident.channel_id,
            filename=f"{incident.id}-review-v{version}.md",
            content=markdown,
            title=f"{incident.id} post-incident review, draft v{version}",
        )
    except SlackApiError as exc:
        await client.chat_postEphemeral(
            channel=incident.channel_id,
            user=user,
            text=f"Draft v{version} is saved but could not be uploaded "
            f"({exc.response.get('error')}); `opsbot postmortem {incident.id}`.",
        )
        return
    still = f"Still to fill: {', '.join(missing)}." if missing else "Every section has data."
    text = (
        f"📝 Review draft v{version} for {incident.id} by <@{user}> is attached. {still} "
        "Edit the summary, impact or root cause and they stay in every later version."
    )
    await client.chat_postMessage(
        channel=incident.channel_id,
        text=text,
        blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {
                "type": "actions",
                "block_id": f"review:{incident.id}:{version}",
                "elements": [
                    {
                        "type": "button",
                        "action_id": EDIT,
                        "value": incident.id,
                        "text": {"type": "plain_text", "text": "Edit summary, impact, root cause"},
                    },
                    {
                        "type": "button",
                        "action_id": REGENERATE,
                        "value": incident.id,
                        "text": {"type": "plain_text", "text": "Regenerate"},
                    },
                ],
            },
        ],
    )


def register(app: AsyncApp, runtime: Runtime, catalogue: CommandCatalogue) -> None:
    @app.action(re.compile(rf"^({incident_render.REVIEW}|{REGENERATE}|{EDIT})$"))
    async def review_button(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        action = body["actions"][0]
        user, channel = body["user"]["id"], body["channel"]["id"]
        incident = await runtime.incidents.store.get(str(action.get("value") or ""))
        if incident is None or incident.channel_id != channel:
            await client.chat_postEphemeral(
                channel=channel, user=user, text="That incident is not in this channel."
            )
            return
        if action["action_id"] == EDIT:
            edits = await runtime.reviews.edits(incident.id)
            await client.views_open(trigger_id=body["trigger_id"], view=edit_modal(incident, edits))
            return
        runtime.tasks.spawn(publish_review(runtime, client, incident, user), name="review:generate")

    @app.view(EDIT_VIEW)
    async def edits_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        values = view["state"]["values"]
        edits = Edits(**{name: (values[name][name].get("value") or None) for name, _ in FIELDS})
        incident = await runtime.incidents.store.get(str(view["private_metadata"]))
        if incident is None:
            return
        user = body["user"]["id"]
        await runtime.reviews.save_edits(incident.id, edits, user)
        runtime.tasks.spawn(publish_review(runtime, client, incident, user), name="review:generate")


def edit_modal(incident: Incident, edits: Edits) -> dict[str, Any]:
    blocks = []
    for name, label in FIELDS:
        element: dict[str, Any] = {
            "type": "plain_text_input",
            "action_id": name,
            "multiline": name != "users_affected",
            "max_length": 2000,
        }
        current = getattr(edits, name)
        if current:
            element["initial_value"] = current
        blocks.append(
            {
                "type": "input",
                "block_id": name,
                "optional": True,
                "label": {"type": "plain_text", "text": label},
                "element": element,
            }
        )
    return {
        "type": "modal",
        "callback_id": EDIT_VIEW,
        "private_metadata": incident.id,
        "title": {"type": "plain_text", "text": "Edit the review"},
        "submit": {"type": "plain_text", "text": "Save & regenerate"},
        "blocks": blocks,
    }

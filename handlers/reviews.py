"""Review drafts in Slack: "Draft review" on resolve, edit and regenerate (`/incident postmortem` is
an `/incident` verb). Each acks and calls one `ReviewService` method."""

from __future__ import annotations

import re

from bot.commands import SlashCommand
from bot.render import incident as incident_render
from bot.render.review import EDIT, EDIT_VIEW, REGENERATE, edits_from
from bot.runbooks.catalogue import Catalogue
from handlers.listening import Delivery, Listeners

SCOPES = ("files:write", "channels:history", "users:read")
EVENTS: tuple[str, ...] = ()


def slash_commands(runbooks: Catalogue) -> list[SlashCommand]:
    return []


async def review_button(delivery: Delivery) -> None:
    await delivery.ack()
    reviews, asker = delivery.services.reviews, delivery.asker
    incident = await reviews.incident_on_card(str(delivery.action.get("value") or ""), asker.channel)
    if delivery.action["action_id"] == EDIT:
        await reviews.open_editor(incident, asker)
    else:
        delivery.spawn(reviews.publish(incident, asker.user), name="review:generate")


async def edits_submitted(delivery: Delivery) -> None:
    await delivery.ack()
    edits = edits_from(delivery.view["state"]["values"])
    work = delivery.services.reviews.edit_and_publish(
        str(delivery.view.get("private_metadata")), edits, delivery.asker.user
    )
    delivery.spawn(work, name="review:generate")


def listeners(runbooks: Catalogue) -> Listeners:
    return Listeners(
        actions=[(re.compile(rf"^({incident_render.REVIEW}|{REGENERATE}|{EDIT})$"), review_button)],
        views={EDIT_VIEW: edits_submitted},
    )

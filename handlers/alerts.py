"""The alert card's buttons: Declare, Attach, Acknowledge, Silence 1 h / 4 h / until resolved, Expire
silence. Each validates the button's value, acks, and calls one `AlertService` method; the service
answers the clicker (and a `UserError` it raises reaches them as one ephemeral line)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.commands import SlashCommand
from bot.errors import UserError
from bot.render import alert as render
from bot.runbooks.catalogue import Catalogue
from bot.services.alerts import AlertService
from bot.slack.asker import Asker
from handlers.listening import Delivery, Listeners

SCOPES = ("chat:write", "channels:join", "channels:read", "users:read")
EVENTS: tuple[str, ...] = ()


class CardButton(BaseModel):
    """What every alert card button carries: the group's id."""

    model_config = ConfigDict(extra="forbid")

    group: int = Field(ge=1)


def slash_commands(runbooks: Catalogue) -> list[SlashCommand]:
    return []


def parse_button(value: str) -> CardButton:
    try:
        return CardButton.model_validate_json(value)
    except ValidationError:
        raise UserError(
            "That button is from a card opsbot cannot read; use the alert's newest card."
        ) from None


Use = Callable[[AlertService, int, Asker], Coroutine[Any, Any, object]]
_USES: dict[str, Use] = {
    render.ACK: lambda s, g, a: s.acknowledge(g, a),
    render.DECLARE: lambda s, g, a: s.declare_from_card(g, a),
    render.ATTACH: lambda s, g, a: s.attach(g, a),
    render.EXPIRE: lambda s, g, a: s.expire_silence(g, a),
}


async def card_button(delivery: Delivery) -> None:
    await delivery.ack()
    action_id = str(delivery.action.get("action_id") or "")
    button = parse_button(str(delivery.action.get("value") or ""))
    alerts, asker = delivery.services.alerts, delivery.asker
    verb, _, choice = action_id.partition(":")
    work: Coroutine[Any, Any, object]
    if verb == render.SILENCE:
        work = alerts.silence(button.group, choice, asker)
    else:
        work = _USES[action_id](alerts, button.group, asker)
    delivery.spawn(work, name=f"alert:{verb}")


def listeners(runbooks: Catalogue) -> Listeners:
    return Listeners(actions=[(render.ACTION_IDS, card_button)])

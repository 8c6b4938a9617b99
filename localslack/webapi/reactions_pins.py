"""reactions.* and pins.* methods, acting as the bot user."""

from __future__ import annotations

import re

from localslack.errors import SlackError
from localslack.model import JSON, Channel, Message
from localslack.webapi.registry import Call, api_method

_EMOJI = re.compile(r"^[a-z0-9_+\-']+(::skin-tone-[2-6])?$")


def emoji_name(raw: str | None) -> str:
    name = (raw or "").strip(":")
    if not name or not _EMOJI.match(name):
        raise SlackError("invalid_name")
    return name


def _item(call: Call, ts_arg: str = "timestamp") -> tuple[Channel, Message]:
    ch = call.channel()
    ts = call.need(ts_arg, "no_item_specified")
    return ch, call.state.message(ch, ts)


@api_method("reactions.add")
def reactions_add(call: Call) -> JSON:
    _, msg = _item(call)
    call.state.add_reaction(msg, call.actor, emoji_name(call.get("name")))
    return {}


@api_method("reactions.remove")
def reactions_remove(call: Call) -> JSON:
    _, msg = _item(call)
    call.state.remove_reaction(msg, call.actor, emoji_name(call.get("name")))
    return {}


@api_method("reactions.get")
def reactions_get(call: Call) -> JSON:
    ch, msg = _item(call)
    return {"type": "message", "channel": ch.id, "message": call.state.api_message(msg)}


@api_method("pins.add")
def pins_add(call: Call) -> JSON:
    ch = call.channel(member=True)
    msg = call.state.message(ch, call.need("timestamp", "no_item_specified"))
    call.state.add_pin(ch, msg, call.actor)
    return {}


@api_method("pins.remove")
def pins_remove(call: Call) -> JSON:
    ch = call.channel(member=True)
    msg = call.state.message(ch, call.need("timestamp", "no_item_specified"))
    call.state.remove_pin(ch, msg)
    return {}


@api_method("pins.list")
def pins_list(call: Call) -> JSON:
    ch = call.channel()
    items = [
        {
            "type": "message",
            "channel": ch.id,
            "created": p.created,
            "created_by": p.created_by,
            "message": call.state.api_message(ch.messages[p.ts]),
        }
        for p in ch.pins
        if p.ts in ch.messages
    ]
    return {"items": items}

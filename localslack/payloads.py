"""Builds what Slack sends the app: slash command forms, interaction payloads and event envelopes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from localslack.model import JSON, Channel, User, View
from localslack.state import Workspace


def slash_form(
    state: Workspace,
    user: User,
    channel: Channel,
    command: str,
    text: str,
    *,
    response_url: str,
    trigger_id: str,
) -> dict[str, str]:
    # An outsider's command comes from their own org's install of the app, so it names their team.
    return {
        "token": state.app.verification_token,
        "team_id": user.team_id,
        "team_domain": state.team_domain_of(user.team_id),
        "channel_id": channel.id,
        "channel_name": "directmessage" if channel.is_im else channel.name,
        "user_id": user.id,
        "user_name": user.name,
        "command": command,
        "text": text,
        "api_app_id": state.app.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def _user_ref(user: User) -> JSON:
    """`team_id` is the user's own org; `team` of the payload stays the workspace the app acts in."""
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": user.team_id}


def interaction_base(state: Workspace, kind: str, user: User, trigger_id: str) -> JSON:
    return {
        "type": kind,
        "user": _user_ref(user),
        "api_app_id": state.app.app_id,
        "token": state.app.verification_token,
        "trigger_id": trigger_id,
        "team": {"id": state.team_id, "domain": state.team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
    }


def interactive_elements(blocks: list[JSON]) -> Iterator[tuple[str, JSON]]:
    """Yields (block_id, element) for every element that can carry an action_id."""
    for block in blocks:
        block_id = str(block.get("block_id", ""))
        if block.get("type") == "actions":
            for el in block.get("elements", []):
                yield block_id, el
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                yield block_id, block[key]


def find_element(blocks: list[JSON], action_id: str, block_id: str | None = None) -> tuple[str, JSON]:
    for bid, el in interactive_elements(blocks):
        if el.get("action_id") == action_id and (block_id is None or bid == block_id):
            return bid, el
    raise LookupError(f"no element with action_id {action_id!r} in these blocks")


def _options(el: JSON) -> list[JSON]:
    opts = list(el.get("options", []))
    for group in el.get("option_groups", []):
        opts.extend(group.get("options", []))
    return opts


def _pick(el: JSON, value: Any) -> JSON:
    opts = _options(el)
    if value is None and opts:
        return dict(opts[0])
    for opt in opts:
        if opt.get("value") == value:
            return dict(opt)
    raise LookupError(f"option {value!r} not offered by {el.get('action_id')!r}")


def element_state(el: JSON, value: Any) -> JSON:
    """The state.values shape Slack reports for `el` holding `value` (None means untouched)."""
    etype = str(el.get("type"))
    out: JSON = {"type": etype}
    many = etype.startswith("multi_") or etype == "checkboxes"
    values = value if isinstance(value, list) else ([] if value is None else [value])
    if etype in ("static_select", "external_select", "radio_buttons", "overflow"):
        out["selected_option"] = None if value is None and etype != "overflow" else _pick(el, value)
    elif etype in ("multi_static_select", "multi_external_select", "checkboxes"):
        out["selected_options"] = [_pick(el, v) for v in values]
    elif etype in ("users_select", "multi_users_select"):
        out["selected_users" if many else "selected_user"] = values if many else value
    elif etype in ("conversations_select", "multi_conversations_select"):
        out["selected_conversations" if many else "selected_conversation"] = values if many else value
    elif etype in ("channels_select", "multi_channels_select"):
        out["selected_channels" if many else "selected_channel"] = values if many else value
    elif etype == "datepicker":
        out["selected_date"] = value
    elif etype == "timepicker":
        out["selected_time"] = value
    elif etype == "datetimepicker":
        out["selected_date_time"] = value
    elif etype == "rich_text_input":
        out["rich_text_value"] = value
    elif etype == "file_input":
        out["files"] = values
    else:
        out["value"] = value
    return out


def action(block_id: str, el: JSON, value: Any) -> JSON:
    """One entry of block_actions.actions for a click/selection on `el`."""
    act: JSON = {"action_id": el.get("action_id"), "block_id": block_id, "action_ts": f"{time.time():.6f}"}
    if el.get("type") == "button":
        act.update({"type": "button", "text": el.get("text")})
        if "value" in el:
            act["value"] = el["value"]
        if "style" in el:
            act["style"] = el["style"]
        return act
    act.update(element_state(el, value))
    return act


def view_state(view: View, values: dict[str, Any]) -> JSON:
    """Maps {block_id: {action_id: v}} or {action_id: v} onto the view's inputs, in Slack's state shape."""
    state: JSON = {}
    used: set[str] = set()
    for block_id, el in interactive_elements(view.blocks):
        action_id = str(el.get("action_id"))
        value: Any = None
        if block_id in values and isinstance(values[block_id], dict) and action_id in values[block_id]:
            value = values[block_id][action_id]
            used.add(block_id)
        elif action_id in values:
            value = values[action_id]
            used.add(action_id)
        state.setdefault(block_id, {})[action_id] = element_state(el, value)
    unknown = set(values) - used
    if unknown:
        raise LookupError(f"no inputs named {sorted(unknown)} in view {view.id}")
    return state


def missing_required(view: View, state: JSON) -> list[str]:
    """Non-optional input blocks left empty; Slack's client refuses to submit those."""
    missing = []
    for block in view.blocks:
        if block.get("type") != "input" or block.get("optional"):
            continue
        entry = state.get(str(block.get("block_id")), {})
        if not any(v for s in entry.values() for k, v in s.items() if k != "type"):
            missing.append(str(block.get("block_id")))
    return missing


def event_envelope(state: Workspace, event: JSON, event_id: str, channel: Channel | None = None) -> JSON:
    """In a Slack Connect channel the outer team_id is the team the event came from, which is why
    bolt reads the installation from `authorizations`, and `context_team_id` names ours."""
    source = state.users.get(str(event.get("user", "")))
    envelope: JSON = {
        "token": state.app.verification_token,
        "team_id": source.team_id if source is not None else state.team_id,
        "enterprise_id": None,
        "api_app_id": state.app.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": state.team_id,
                "user_id": state.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": channel is not None and channel.is_ext_shared,
        "event_context": f"4-{event_id}",
    }
    if channel is not None and channel.is_ext_shared:
        envelope.update({"context_team_id": state.team_id, "context_enterprise_id": None})
    return envelope


def event_channel(state: Workspace, event: JSON) -> Channel | None:
    """The conversation an event happened in, wherever that event type keeps its id."""
    item = event.get("item")
    in_item = item.get("channel") if isinstance(item, dict) else None
    refs = [event.get("channel"), event.get("channel_id"), in_item]
    for ref in refs:
        if isinstance(ref, str) and ref in state.channels:
            return state.channels[ref]
    return None

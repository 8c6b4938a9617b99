"""conversations.* methods other than history: create, archive, join, invite, info, list, topic, members."""

from __future__ import annotations

import re
import time

from localslack.errors import SlackError
from localslack.model import JSON, Channel, User
from localslack.webapi.paging import paginate
from localslack.webapi.registry import Call, api_method

_ALLOWED = re.compile(r"^[a-z0-9_\-]+$")
_PUNCTUATION_ONLY = re.compile(r"^[\-_]+$")
MAX_NAME = 80
MAX_TOPIC = 250


def validate_channel_name(name: str) -> None:
    """Slack's rules: lowercase letters, digits, hyphens and underscores, at most 80 characters."""
    if not name:
        raise SlackError("invalid_name_required")
    if len(name) > MAX_NAME:
        raise SlackError("invalid_name_maxlength")
    if _PUNCTUATION_ONLY.match(name):
        raise SlackError("invalid_name_punctuation")
    if not _ALLOWED.match(name):
        raise SlackError("invalid_name_specials")


@api_method("conversations.create")
def create(call: Call) -> JSON:
    name = call.get("name") or ""
    validate_channel_name(name)
    if any(c.name == name and not c.is_im for c in call.state.channels.values()):
        raise SlackError("name_taken")
    ch = call.state.create_channel(name, call.actor, is_private=call.flag("is_private"))
    return {"channel": ch.to_api(call.actor)}


@api_method("conversations.join")
def join(call: Call) -> JSON:
    ch = call.channel()
    if ch.is_private or ch.is_im:
        raise SlackError("method_not_supported_for_channel_type")
    if ch.is_archived:
        raise SlackError("is_archived")
    out: JSON = {"channel": ch.to_api(call.actor)}
    if call.actor in ch.members:
        out["warning"] = "already_in_channel"
        out["response_metadata"] = {"warnings": ["already_in_channel"]}
    else:
        ch.members.append(call.actor)
        out["channel"] = ch.to_api(call.actor)
    return out


@api_method("conversations.archive")
def archive(call: Call) -> JSON:
    ch = call.channel(member=True)
    if ch.is_im:
        raise SlackError("method_not_supported_for_channel_type")
    if ch.is_archived:
        raise SlackError("already_archived")
    if ch.name == "general":
        raise SlackError("cant_archive_general")
    ch.is_archived = True
    return {}


@api_method("conversations.invite")
def invite(call: Call) -> JSON:
    ch = call.channel(member=True)
    if ch.is_archived:
        raise SlackError("is_archived")
    refs = [u.strip() for u in (call.get("users") or "").split(",") if u.strip()]
    if not refs:
        raise SlackError("no_user")
    if len(refs) > 1000:
        raise SlackError("too_many_users")
    user_ids = []
    for ref in refs:
        if ref not in call.state.users:
            raise SlackError("user_not_found")
        if ref == call.actor:
            raise SlackError("cant_invite_self")
        if ref in ch.members:
            raise SlackError("already_in_channel")
        _check_invitable(call, call.state.users[ref], ch)
        user_ids.append(ref)
    ch.members.extend(user_ids)
    return {"channel": ch.to_api(call.actor)}


def _check_invitable(call: Call, user: User, ch: Channel) -> None:
    """A single-channel guest keeps to one channel; an outsider only enters channels shared with their org."""
    if user.is_ultra_restricted and any(
        user.id in c.members for c in call.state.channels.values() if not c.is_im
    ):
        raise SlackError("ura_max_channels")
    if call.state.is_external(user) and user.team_id not in ch.connected_team_ids:
        raise SlackError("cant_invite")


@api_method("conversations.info")
def info(call: Call) -> JSON:
    ch = call.channel()
    return {"channel": ch.to_api(call.actor, include_num_members=call.flag("include_num_members"))}


_TYPES = {"public_channel", "private_channel", "im", "mpim"}


@api_method("conversations.list")
def list_(call: Call) -> JSON:
    wanted = {t.strip() for t in (call.get("types") or "public_channel").split(",") if t.strip()}
    if not wanted <= _TYPES:
        raise SlackError("invalid_types")
    exclude_archived = call.flag("exclude_archived")
    visible = []
    for ch in call.state.channels.values():
        kind = "im" if ch.is_im else "private_channel" if ch.is_private else "public_channel"
        if kind not in wanted or (exclude_archived and ch.is_archived):
            continue
        if ch.is_private and call.actor not in ch.members:
            continue
        visible.append(ch)
    limit = call.number("limit", 100, high=1000)
    page, next_cursor = paginate(visible, call.get("cursor"), limit, key=lambda c: c.id)
    return {
        "channels": [c.to_api(call.actor) for c in page],
        "response_metadata": {"next_cursor": next_cursor},
    }


@api_method("conversations.setTopic")
def set_topic(call: Call) -> JSON:
    ch = call.channel(member=True)
    topic = call.get("topic") or ""
    if len(topic) > MAX_TOPIC:
        raise SlackError("too_long")
    ch.topic = {"value": topic, "creator": call.actor, "last_set": int(time.time())}
    call.state.add_message(
        ch, user=call.actor, subtype="channel_topic", text=f"set the channel topic: {topic}"
    )
    return {"channel": ch.to_api(call.actor)}


@api_method("conversations.open")
def open_(call: Call) -> JSON:
    refs = [u.strip() for u in (call.get("users") or "").split(",") if u.strip()]
    if not refs:
        ref = call.get("channel")
        if not ref:
            raise SlackError("users_list_not_supplied")
        return {"channel": call.channel().to_api(call.actor)}
    if len(refs) > 1:
        raise SlackError(
            "method_not_supported_for_channel_type", messages=["[ERROR] group DMs are not emulated"]
        )
    if refs[0] not in call.state.users:
        raise SlackError("user_not_found")
    return {"channel": {"id": call.state.im_channel(refs[0]).id}}


@api_method("conversations.members")
def members(call: Call) -> JSON:
    ch = call.channel()
    page, next_cursor = paginate(
        ch.members, call.get("cursor"), call.number("limit", 100, high=1000), key=lambda m: m
    )
    return {"members": page, "response_metadata": {"next_cursor": next_cursor}}

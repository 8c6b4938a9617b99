"""Workspace entities (users, channels, messages, files, views...) and their Slack API JSON shapes."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

SLACKBOT = "USLACKBOT"
_AVATAR_SIZES = (24, 32, 48, 72, 192, 512)


@dataclass
class User:
    id: str
    team_id: str
    name: str
    real_name: str
    display_name: str = ""
    title: str = ""
    email: str = ""
    tz: str = "Europe/London"
    is_admin: bool = False
    is_bot: bool = False
    bot_id: str | None = None
    is_restricted: bool = False
    is_ultra_restricted: bool = False

    @property
    def is_guest(self) -> bool:
        return self.is_restricted or self.is_ultra_restricted

    @property
    def _digest(self) -> str:
        # Stable per user, so colour and avatar hash stay the same across runs like a real account's.
        return hashlib.sha256(self.id.encode()).hexdigest()

    def to_api(self, *, stranger: bool = False) -> JSON:
        """The full user object of users.info/list/lookupByEmail (docs.slack.dev users.info example);
        `stranger`: an outsider who shares no channel with the app, whom Slack marks is_stranger."""
        first, _, last = self.real_name.partition(" ")
        profile: JSON = {
            "avatar_hash": self._digest[:12],
            "status_text": "",
            "status_emoji": "",
            "status_expiration": 0,
            "title": self.title,
            "phone": "",
            "skype": "",
            "first_name": first,
            "last_name": last,
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.display_name,
            "display_name_normalized": self.display_name,
            "team": self.team_id,
            **{
                f"image_{px}": f"https://avatars.localslack.invalid/{self.id}_{px}.png"
                for px in _AVATAR_SIZES
            },
        }
        if self.email:
            profile["email"] = self.email
        if self.bot_id:
            profile["bot_id"] = self.bot_id
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": False,
            "color": self._digest[:6],
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": self.tz,
            "tz_offset": 0,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": self.is_restricted,
            "is_ultra_restricted": self.is_ultra_restricted,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 0,
            "is_email_confirmed": bool(self.email),
            "who_can_share_contact_card": "EVERYONE",
            "has_2fa": False,
        } | ({"is_stranger": True} if stranger else {})

    def profile_api(self) -> JSON:
        """What users.profile.get returns: the profile alone, whose `team` is the user's own org."""
        return dict(self.to_api()["profile"])


@dataclass
class UserGroup:
    id: str
    team_id: str
    handle: str
    name: str
    description: str = ""
    users: list[str] = field(default_factory=list)
    created: int = field(default_factory=lambda: int(time.time()))

    def to_api(self, include_users: bool = False) -> JSON:
        """The usergroup object of usergroups.list (docs.slack.dev example); seeded groups are never
        edited, so they were last updated when created, by Slackbot."""
        out: JSON = {
            "id": self.id,
            "team_id": self.team_id,
            "is_usergroup": True,
            "name": self.name,
            "description": self.description,
            "handle": self.handle,
            "is_external": False,
            "date_create": self.created,
            "date_update": self.created,
            "date_delete": 0,
            "auto_type": None,
            "created_by": SLACKBOT,
            "updated_by": SLACKBOT,
            "deleted_by": None,
            "prefs": {"channels": [], "groups": []},
            "user_count": len(self.users),
        }
        if include_users:
            out["users"] = list(self.users)
        return out


@dataclass
class Reaction:
    name: str
    users: list[str] = field(default_factory=list)

    def to_api(self) -> JSON:
        return {"name": self.name, "users": list(self.users), "count": len(self.users)}


@dataclass
class File:
    id: str
    name: str
    title: str
    user: str
    size: int
    created: int = field(default_factory=lambda: int(time.time()))
    content: bytes = b""
    uploaded: bool = False
    completed: bool = False
    channels: list[str] = field(default_factory=list)
    url_private: str = ""

    @property
    def filetype(self) -> str:
        _, dot, ext = self.name.rpartition(".")
        return ext.lower() if dot else "text"

    @property
    def mimetype(self) -> str:
        return {
            "txt": "text/plain",
            "text": "text/plain",
            "md": "text/markdown",
            "json": "application/json",
            "csv": "text/csv",
            "png": "image/png",
            "log": "text/plain",
            "yaml": "text/yaml",
        }.get(self.filetype, "application/octet-stream")

    def to_api(self) -> JSON:
        return {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.name,
            "title": self.title,
            "mimetype": self.mimetype,
            "filetype": self.filetype,
            "user": self.user,
            "size": self.size,
            "mode": "hosted",
            "is_external": False,
            "url_private": self.url_private,
            "url_private_download": self.url_private,
            "channels": list(self.channels),
        }


@dataclass
class Message:
    channel: str
    ts: str
    text: str = ""
    user: str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    blocks: list[JSON] | None = None
    attachments: list[JSON] | None = None
    thread_ts: str | None = None
    parent_user_id: str | None = None
    subtype: str | None = None
    username: str | None = None
    metadata: JSON | None = None
    files: list[File] = field(default_factory=list)
    reactions: list[Reaction] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    edited: JSON | None = None
    pinned_to: list[str] = field(default_factory=list)
    team: str = ""

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def reply_users(self, replies: list[Message]) -> list[str]:
        seen: list[str] = []
        for r in replies:
            if r.user and r.user not in seen:
                seen.append(r.user)
        return seen

    def to_api(self, replies: list[Message] | None = None) -> JSON:
        out: JSON = {"type": "message", "ts": self.ts, "text": self.text}
        optional: JSON = {
            "subtype": self.subtype,
            "user": self.user,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "username": self.username,
            "blocks": self.blocks,
            "attachments": self.attachments,
            "metadata": self.metadata,
            "thread_ts": self.thread_ts,
            "parent_user_id": self.parent_user_id if self.is_reply else None,
            "edited": self.edited,
            "team": self.team or None,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        if self.files:
            out["files"] = [f.to_api() for f in self.files]
            out["upload"] = False
        if self.reactions:
            out["reactions"] = [r.to_api() for r in self.reactions]
        if self.pinned_to:
            out["pinned_to"] = list(self.pinned_to)
        if replies:
            out["reply_count"] = len(replies)
            out["reply_users"] = self.reply_users(replies)
            out["reply_users_count"] = len(out["reply_users"])
            out["latest_reply"] = replies[-1].ts
        return out


@dataclass
class Ephemeral:
    """A message only one user sees; never returned by history, gone on reload in real Slack."""

    channel: str
    user: str
    ts: str
    text: str = ""
    blocks: list[JSON] | None = None
    attachments: list[JSON] | None = None
    thread_ts: str | None = None
    bot_id: str | None = None
    deleted: bool = False

    def to_api(self) -> JSON:
        out: JSON = {"type": "message", "subtype": "bot_message", "ts": self.ts, "text": self.text}
        if self.blocks is not None:
            out["blocks"] = self.blocks
        if self.attachments is not None:
            out["attachments"] = self.attachments
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.bot_id:
            out["bot_id"] = self.bot_id
        return out


@dataclass
class Pin:
    channel: str
    ts: str
    created_by: str
    created: int = field(default_factory=lambda: int(time.time()))


@dataclass
class Bookmark:
    id: str
    channel_id: str
    title: str
    link: str
    type: str
    created_by: str
    emoji: str | None = None
    created: int = field(default_factory=lambda: int(time.time()))

    def to_api(self) -> JSON:
        return {
            "id": self.id,
            "channel_id": self.channel_id,
            "title": self.title,
            "link": self.link,
            "emoji": self.emoji,
            "icon_url": None,
            "type": self.type,
            "date_created": self.created,
            "date_updated": 0,
            "rank": "U",
            "last_updated_by_user_id": self.created_by,
            "last_updated_by_team_id": "",
            "shortcut_id": None,
            "entity_id": None,
            "app_id": None,
        }


@dataclass
class Channel:
    id: str
    name: str
    created: int
    creator: str
    is_private: bool = False
    is_im: bool = False
    im_user: str | None = None
    is_archived: bool = False
    members: list[str] = field(default_factory=list)
    topic: JSON = field(default_factory=lambda: {"value": "", "creator": "", "last_set": 0})
    purpose: JSON = field(default_factory=lambda: {"value": "", "creator": "", "last_set": 0})
    messages: dict[str, Message] = field(default_factory=dict)
    timeline: list[str] = field(default_factory=list)
    pins: list[Pin] = field(default_factory=list)
    bookmarks: list[Bookmark] = field(default_factory=list)
    team_id: str = ""
    host_team_id: str = ""
    is_ext_shared: bool = False
    connected_team_ids: list[str] = field(default_factory=list)

    def visible_to(self, user: User) -> bool:
        """Members see a channel; other full members of the team also see public ones, while guests
        and people from other orgs see only what they are in."""
        if user.id in self.members:
            return True
        return not (self.is_private or self.is_im or user.is_guest or user.team_id != self.team_id)

    def sharing_api(self) -> JSON:
        """Slack Connect fields: the teams in the channel, seen from this workspace (`context_team_id`)."""
        teams = [self.team_id, *self.connected_team_ids]
        out: JSON = {
            "is_shared": self.is_ext_shared,
            "is_ext_shared": self.is_ext_shared,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "pending_connected_team_ids": [],
            "shared_team_ids": teams,
            "conversation_host_id": self.host_team_id or self.team_id,
            "context_team_id": self.team_id,
        }
        if self.is_ext_shared:
            out["connected_team_ids"] = teams
        return out

    @property
    def channel_type(self) -> str:
        if self.is_im:
            return "im"
        return "group" if self.is_private else "channel"

    def to_api(self, viewer: str, include_num_members: bool = False) -> JSON:
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.im_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        out: JSON = {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "creator": self.creator,
            "is_archived": self.is_archived,
            "is_general": self.name == "general",
            **self.sharing_api(),
            "is_member": viewer in self.members,
            "unlinked": 0,
            "topic": dict(self.topic),
            "purpose": dict(self.purpose),
            "previous_names": [],
        }
        if include_num_members:
            out["num_members"] = len(self.members)
        return out


@dataclass
class View:
    id: str
    team_id: str
    user: str
    app_id: str
    bot_id: str
    type: str
    blocks: list[JSON]
    hash: str
    title: JSON | None = None
    submit: JSON | None = None
    close: JSON | None = None
    callback_id: str = ""
    private_metadata: str = ""
    external_id: str = ""
    clear_on_close: bool = False
    notify_on_close: bool = False
    root_view_id: str | None = None
    previous_view_id: str | None = None
    state_values: JSON = field(default_factory=dict)
    closed: bool = False

    def to_api(self) -> JSON:
        return {
            "id": self.id,
            "team_id": self.team_id,
            "type": self.type,
            "blocks": self.blocks,
            "private_metadata": self.private_metadata,
            "callback_id": self.callback_id,
            "state": {"values": self.state_values},
            "hash": self.hash,
            "title": self.title,
            "clear_on_close": self.clear_on_close,
            "notify_on_close": self.notify_on_close,
            "close": self.close,
            "submit": self.submit,
            "previous_view_id": self.previous_view_id,
            "root_view_id": self.root_view_id or self.id,
            "app_id": self.app_id,
            "external_id": self.external_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }

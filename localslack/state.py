"""The in-memory workspace: lookups and the mutations every entry point (Web API, driver, acks) shares."""

from __future__ import annotations

import time
from collections.abc import Mapping

from localslack.config import ChannelSeed, TeamSeed, UserSeed, WorkspaceSeed
from localslack.errors import SlackError
from localslack.ids import IdFactory
from localslack.model import JSON, Channel, Ephemeral, File, Message, Pin, Reaction, User, UserGroup, View

MAX_REACTIONS = 50
MAX_PINS = 100


class NotFound(SlackError, LookupError):
    """A referenced user/channel/message does not exist; `code` is the Slack error name."""

    def __init__(self, code: str, ref: str) -> None:
        super().__init__(code, messages=[f"not found: {ref}"])


class Workspace:
    """Single-team workspace with one installed app whose bot acts through the Web API."""

    def __init__(self, seed: WorkspaceSeed | None = None) -> None:
        self.seed = seed or WorkspaceSeed()
        self.ids = IdFactory()
        self.team_id = self.seed.team_id
        self.team_name = self.seed.team_name
        self.team_domain = self.seed.team_domain
        self.app = self.seed.app
        self.public_base = ""
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.usergroups: dict[str, UserGroup] = {}
        self.files: dict[str, File] = {}
        self.views: dict[str, View] = {}
        self.view_stacks: dict[str, list[str]] = {}
        self.home_views: dict[str, str] = {}
        self.ephemerals: list[Ephemeral] = []
        self.upload_keys: dict[str, str] = {}
        self.external_teams: dict[str, TeamSeed] = {}
        self._load(self.seed)

    @property
    def bot_user_id(self) -> str:
        return self.app.bot_user_id

    @property
    def bot_id(self) -> str:
        return self.app.bot_id

    def _load(self, seed: WorkspaceSeed) -> None:
        bot = User(
            id=self.app.bot_user_id,
            team_id=self.team_id,
            name=self.app.bot_name,
            real_name=self.app.bot_name,
            display_name=self.app.bot_name,
            is_bot=True,
            bot_id=self.app.bot_id,
        )
        self.users[bot.id] = bot
        self._add(seed.users, seed.channels, seed.external_teams)
        for g in seed.usergroups:
            self.usergroups[g.id] = UserGroup(
                id=g.id,
                team_id=self.team_id,
                handle=g.handle,
                name=g.name,
                description=g.description,
                users=[self.user(m).id for m in g.users],
            )

    def extend(
        self,
        *,
        users: list[UserSeed] | None = None,
        channels: list[ChannelSeed] | None = None,
        external_teams: list[TeamSeed] | None = None,
        add_members: Mapping[str, list[str]] | None = None,
    ) -> None:
        """Adds seeded people, channels and partner orgs to the running workspace under the seed's rules."""
        self.seed = self.seed.extended(
            users=users, channels=channels, external_teams=external_teams, add_members=add_members
        )
        self._add(users or [], channels or [], external_teams or [])
        for ref, members in (add_members or {}).items():
            ch = self.channel(ref)
            ch.members += [u.id for u in map(self.user, members) if u.id not in ch.members]

    def _add(self, users: list[UserSeed], channels: list[ChannelSeed], teams: list[TeamSeed]) -> None:
        for t in teams:
            self.external_teams[t.id] = t
        for u in users:
            self.users[u.id] = User(
                id=u.id,
                team_id=u.team_id or self.team_id,
                name=u.name,
                real_name=u.real_name,
                display_name=u.display_name,
                title=u.title,
                email=u.email,
                tz=u.tz,
                is_admin=u.is_admin,
                is_restricted=u.is_restricted,
                is_ultra_restricted=u.is_ultra_restricted,
            )
        now = int(time.time())
        for c in channels:
            ch = Channel(
                id=c.id,
                name=c.name,
                created=now,
                creator=self.bot_user_id,
                is_private=c.is_private,
                members=[self.user(m).id for m in c.members],
                team_id=self.team_id,
                host_team_id=c.host_team_id or self.team_id,
                is_ext_shared=c.is_ext_shared,
                connected_team_ids=list(c.connected_team_ids),
            )
            ch.topic = {"value": c.topic, "creator": "", "last_set": now if c.topic else 0}
            ch.purpose = {"value": c.purpose, "creator": "", "last_set": now if c.purpose else 0}
            self.channels[ch.id] = ch

    def is_external(self, user: User) -> bool:
        """A Slack Connect member from another organisation."""
        return user.team_id != self.team_id

    def team_domain_of(self, team_id: str) -> str:
        team = self.external_teams.get(team_id)
        return team.domain if team is not None else self.team_domain

    def shares_channel_with_bot(self, user: User) -> bool:
        return any(user.id in c.members and self.bot_user_id in c.members for c in self.channels.values())

    def user(self, ref: str) -> User:
        """Resolves an id, a name, "@name" or "bot"."""
        if ref == "bot":
            return self.users[self.bot_user_id]
        if ref in self.users:
            return self.users[ref]
        name = ref.removeprefix("@")
        for u in self.users.values():
            if u.name == name:
                return u
        raise NotFound("user_not_found", ref)

    def channel(self, ref: str) -> Channel:
        """Resolves an id, a name or "#name"; archived channels included."""
        if ref in self.channels:
            return self.channels[ref]
        name = ref.removeprefix("#")
        for c in self.channels.values():
            if c.name == name and not c.is_im:
                return c
        raise NotFound("channel_not_found", ref)

    def usergroup(self, ref: str) -> UserGroup:
        if ref in self.usergroups:
            return self.usergroups[ref]
        for g in self.usergroups.values():
            if g.handle == ref.removeprefix("@"):
                return g
        raise NotFound("no_such_subteam", ref)

    def im_channel(self, user_id: str) -> Channel:
        """The bot's DM with a user, created on first use as Slack does."""
        for c in self.channels.values():
            if c.is_im and c.im_user == user_id:
                return c
        ch = Channel(
            id=self.ids.new("D"),
            name=user_id,
            created=int(time.time()),
            creator=self.bot_user_id,
            is_private=True,
            is_im=True,
            im_user=user_id,
            members=[user_id, self.bot_user_id],
            team_id=self.team_id,
        )
        self.channels[ch.id] = ch
        return ch

    def create_channel(self, name: str, creator: str, is_private: bool = False) -> Channel:
        ch = Channel(
            id=self.ids.new("C"),
            name=name,
            created=int(time.time()),
            creator=creator,
            is_private=is_private,
            members=[creator],
            team_id=self.team_id,
        )
        self.channels[ch.id] = ch
        return ch

    def message(self, channel: Channel, ts: str) -> Message:
        try:
            return channel.messages[ts]
        except KeyError:
            raise NotFound("message_not_found", ts) from None

    def replies(self, parent: Message) -> list[Message]:
        ch = self.channels[parent.channel]
        return [ch.messages[ts] for ts in parent.replies]

    def api_message(self, msg: Message) -> JSON:
        return msg.to_api(self.replies(msg) if msg.replies else None)

    def add_message(
        self,
        channel: Channel,
        *,
        user: str,
        text: str = "",
        blocks: list[JSON] | None = None,
        attachments: list[JSON] | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        subtype: str | None = None,
        files: list[File] | None = None,
        metadata: JSON | None = None,
        username: str | None = None,
    ) -> Message:
        """Stores a message; a reply to a reply lands in the parent's thread as in Slack."""
        parent: Message | None = None
        if thread_ts is not None:
            parent = self.message(channel, thread_ts)
            if parent.is_reply and parent.thread_ts is not None:
                parent = self.message(channel, parent.thread_ts)
        author = self.users.get(user)
        is_bot = author is not None and author.is_bot
        msg = Message(
            channel=channel.id,
            ts=self.ids.ts(),
            text=text,
            user=user,
            blocks=blocks,
            attachments=attachments,
            bot_id=author.bot_id if is_bot and author else None,
            app_id=self.app.app_id if is_bot else None,
            subtype=subtype or ("thread_broadcast" if parent and reply_broadcast else None),
            files=list(files or []),
            metadata=metadata,
            username=username,
            team=author.team_id if author is not None else self.team_id,
        )
        if parent is not None:
            msg.thread_ts = parent.ts
            msg.parent_user_id = parent.user
            if parent.thread_ts is None:
                parent.thread_ts = parent.ts
            parent.replies.append(msg.ts)
        channel.messages[msg.ts] = msg
        if parent is None or reply_broadcast:
            channel.timeline.append(msg.ts)
        return msg

    def delete_message(self, channel: Channel, msg: Message) -> None:
        """Removes a message; a thread parent with replies stays as a tombstone like in Slack."""
        if msg.replies:
            msg.subtype, msg.text = "tombstone", "This message was deleted."
            msg.blocks, msg.attachments, msg.files = None, None, []
            return
        del channel.messages[msg.ts]
        if msg.ts in channel.timeline:
            channel.timeline.remove(msg.ts)
        if msg.is_reply and msg.thread_ts in channel.messages:
            parent = channel.messages[msg.thread_ts]
            parent.replies.remove(msg.ts)
            if parent.subtype == "tombstone" and not parent.replies:
                self.delete_message(channel, parent)
        channel.pins = [p for p in channel.pins if p.ts != msg.ts]

    def add_ephemeral(
        self,
        channel: Channel,
        user: str,
        *,
        text: str,
        blocks: list[JSON] | None = None,
        attachments: list[JSON] | None = None,
        thread_ts: str | None = None,
    ) -> Ephemeral:
        eph = Ephemeral(
            channel=channel.id,
            user=user,
            ts=self.ids.ts(),
            text=text,
            blocks=blocks,
            attachments=attachments,
            thread_ts=thread_ts,
            bot_id=self.bot_id,
        )
        self.ephemerals.append(eph)
        return eph

    def open_view_stack(self, user: str) -> list[str]:
        return self.view_stacks.setdefault(user, [])

    def close_view(self, view: View) -> None:
        view.closed = True
        stack = self.view_stacks.get(view.user, [])
        if view.id in stack:
            stack.remove(view.id)

    def add_reaction(self, msg: Message, user: str, name: str) -> None:
        for r in msg.reactions:
            if r.name == name:
                if user in r.users:
                    raise SlackError("already_reacted")
                r.users.append(user)
                return
        if len(msg.reactions) >= MAX_REACTIONS:
            raise SlackError("too_many_reactions")
        msg.reactions.append(Reaction(name=name, users=[user]))

    def remove_reaction(self, msg: Message, user: str, name: str) -> None:
        for r in msg.reactions:
            if r.name == name and user in r.users:
                r.users.remove(user)
                if not r.users:
                    msg.reactions.remove(r)
                return
        raise SlackError("no_reaction")

    def add_pin(self, channel: Channel, msg: Message, user: str) -> Pin:
        if any(p.ts == msg.ts for p in channel.pins):
            raise SlackError("already_pinned")
        if len(channel.pins) >= MAX_PINS:
            raise SlackError("too_many_pins")
        pin = Pin(channel=channel.id, ts=msg.ts, created_by=user)
        channel.pins.append(pin)
        msg.pinned_to.append(channel.id)
        return pin

    def remove_pin(self, channel: Channel, msg: Message) -> None:
        if not any(p.ts == msg.ts for p in channel.pins):
            raise SlackError("no_pin")
        channel.pins = [p for p in channel.pins if p.ts != msg.ts]
        if channel.id in msg.pinned_to:
            msg.pinned_to.remove(channel.id)

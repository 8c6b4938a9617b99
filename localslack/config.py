"""Seed and timing configuration of an emulated workspace (pydantic models at the caller boundary)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class UserSeed(_Frozen):
    id: str
    name: str
    real_name: str
    display_name: str = ""
    title: str = ""
    email: str = ""
    tz: str = "Europe/London"
    is_admin: bool = False
    is_restricted: bool = Field(default=False, description="a guest; multi-channel guests have only this set")
    is_ultra_restricted: bool = Field(
        default=False, description="a single-channel guest; Slack reports is_restricted with it"
    )
    team_id: str | None = Field(
        default=None, description="None: the workspace's own team; another team's id: a Slack Connect user"
    )

    @model_validator(mode="after")
    def _guest_flags_agree(self) -> UserSeed:
        if self.is_ultra_restricted and not self.is_restricted:
            raise ValueError(f"user {self.name}: a single-channel guest is also is_restricted in Slack")
        if self.is_admin and self.is_restricted:
            raise ValueError(f"user {self.name}: a guest cannot be an admin")
        return self


class TeamSeed(_Frozen):
    """Another organisation's workspace whose people reach ours through Slack Connect channels."""

    id: str = Field(pattern=r"^T[A-Z0-9]+$")
    name: str
    domain: str


class ChannelSeed(_Frozen):
    id: str
    name: str
    is_private: bool = False
    topic: str = ""
    purpose: str = ""
    members: list[str] = Field(default_factory=list, description="user names or ids; 'bot' is the app's bot")
    is_ext_shared: bool = Field(default=False, description="a Slack Connect channel shared with other orgs")
    connected_team_ids: list[str] = Field(
        default_factory=list, description="the other organisations' teams this channel is shared with"
    )
    host_team_id: str | None = Field(
        default=None, description="the team that created the channel; None is the workspace's own team"
    )

    @model_validator(mode="after")
    def _sharing_is_consistent(self) -> ChannelSeed:
        if self.is_ext_shared != bool(self.connected_team_ids):
            raise ValueError(f"channel {self.name}: is_ext_shared needs connected_team_ids and vice versa")
        return self


class UserGroupSeed(_Frozen):
    id: str
    handle: str
    name: str
    description: str = ""
    users: list[str] = Field(default_factory=list, description="user names or ids")


class SlashCommandSeed(_Frozen):
    """A slash command as the app's manifest declares it; the web client autocompletes these."""

    command: str = Field(pattern=r"^/[a-z0-9_-]{1,31}$")
    description: str = ""
    usage_hint: str = ""


class AppSeed(_Frozen):
    """Identity and credentials of the single installed app."""

    app_id: str = "A0OPSBOT"
    bot_id: str = "B0OPSBOT"
    bot_user_id: str = "U0OPSBOT"
    bot_name: str = "opsbot"
    # Fixed fake credentials: the emulator only listens on loopback and they unlock nothing real.
    bot_token: str = "xoxb-1000000000-2000000000-localslackopsbot"  # noqa: S105
    app_token: str = "xapp-1-A0OPSBOT-3000000000-localslackapptoken"  # noqa: S105
    signing_secret: str = "localslack-signing-secret-0123456789abcdef"  # noqa: S105
    verification_token: str = "localslack-verification-token"  # noqa: S105
    scopes: list[str] = Field(
        default_factory=lambda: [
            "commands",
            "chat:write",
            "channels:manage",
            "channels:read",
            "channels:history",
            "channels:join",
            "groups:read",
            "groups:history",
            "groups:write",
            "im:write",
            "channels:write.invites",
            "channels:write.topic",
            "pins:write",
            "pins:read",
            "reactions:read",
            "reactions:write",
            "users:read",
            "users:read.email",
            "usergroups:read",
            "files:write",
            "files:read",
            "bookmarks:write",
            "bookmarks:read",
            "app_mentions:read",
        ]
    )
    bot_events: list[str] = Field(
        default_factory=lambda: [
            "app_mention",
            "message",
            "reaction_added",
            "reaction_removed",
            "pin_added",
            "pin_removed",
        ],
        description="event types the app subscribes to; others are not delivered",
    )
    commands: list[SlashCommandSeed] = Field(
        default_factory=list, description="the app's slash commands; empty means any command is dispatched"
    )


def _default_users() -> list[UserSeed]:
    return [
        UserSeed(
            id="U0ALICE",
            name="alice",
            real_name="Alice Anders",
            display_name="alice",
            title="On-call engineer",
            email="alice@opsbot-demo.example",
        ),
        UserSeed(
            id="U0BOB",
            name="bob",
            real_name="Bob Brown",
            display_name="bob",
            title="Approver",
            email="bob@opsbot-demo.example",
        ),
        UserSeed(
            id="U0CAROL",
            name="carol",
            real_name="Carol Chen",
            display_name="carol",
            title="Engineering manager",
            email="carol@opsbot-demo.example",
            is_admin=True,
        ),
        UserSeed(
            id="U0DAVE",
            name="dave",
            real_name="Dave Diaz",
            display_name="dave",
            title="Engineer",
            email="dave@opsbot-demo.example",
        ),
    ]


_EVERYONE = ["alice", "bob", "carol", "dave", "bot"]


def _default_channels() -> list[ChannelSeed]:
    return [
        ChannelSeed(
            id="C0INCIDENT",
            name="incident-response",
            topic="Incidents are declared here",
            members=list(_EVERYONE),
        ),
        ChannelSeed(id="C0GENERAL", name="general", topic="Company-wide", members=list(_EVERYONE)),
    ]


def _default_groups() -> list[UserGroupSeed]:
    return [
        UserGroupSeed(id="S0ONCALL", handle="oncall", name="On-call", users=["alice", "dave"]),
        UserGroupSeed(id="S0APPROVERS", handle="approvers", name="Approvers", users=["bob", "carol"]),
        UserGroupSeed(id="S0MANAGERS", handle="managers", name="Managers", users=["carol"]),
    ]


class WorkspaceSeed(_Frozen):
    """Everything a fresh workspace starts with; the defaults are the opsbot demo workspace."""

    team_id: str = "T0OPSBOT"
    team_name: str = "opsbot-demo"
    team_domain: str = "opsbot-demo"
    app: AppSeed = Field(default_factory=AppSeed)
    users: list[UserSeed] = Field(default_factory=_default_users)
    channels: list[ChannelSeed] = Field(default_factory=_default_channels)
    usergroups: list[UserGroupSeed] = Field(default_factory=_default_groups)
    external_teams: list[TeamSeed] = Field(
        default_factory=list, description="other organisations reachable through Slack Connect channels"
    )

    @model_validator(mode="after")
    def _references_resolve(self) -> WorkspaceSeed:
        for kind, ids in (("user", [u.id for u in self.users]), ("channel", [c.id for c in self.channels])):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            if twice:
                raise ValueError(f"{kind} ids used twice: {twice}")
        known = {u.id for u in self.users} | {u.name for u in self.users} | {"bot", self.app.bot_user_id}
        for ch in self.channels:
            missing = [m for m in ch.members if m not in known]
            if missing:
                raise ValueError(f"channel {ch.name} has unknown members {missing}")
        for g in self.usergroups:
            missing = [m for m in g.users if m not in known]
            if missing:
                raise ValueError(f"usergroup {g.handle} has unknown users {missing}")
        self._check_connect()
        return self

    def home_team(self, user: UserSeed) -> str:
        return user.team_id or self.team_id

    def _check_connect(self) -> None:
        """Slack Connect and guest rules: outsiders only sit in channels shared with their org, and a
        single-channel guest is in one channel."""
        teams = {t.id for t in self.external_teams}
        for u in self.users:
            if self.home_team(u) not in teams | {self.team_id}:
                raise ValueError(f"user {u.name} belongs to unknown team {u.team_id}")
        for ch in self.channels:
            unknown = set(ch.connected_team_ids) - teams
            if unknown:
                raise ValueError(f"channel {ch.name} is shared with unknown teams {sorted(unknown)}")
            if ch.host_team_id not in (None, self.team_id, *ch.connected_team_ids):
                raise ValueError(f"channel {ch.name} is hosted by a team it is not shared with")
        by_ref = {u.id: u for u in self.users} | {u.name: u for u in self.users}
        seats: dict[str, int] = {}
        for ch in self.channels:
            for u in (by_ref[m] for m in ch.members if m in by_ref):
                if self.home_team(u) != self.team_id and self.home_team(u) not in ch.connected_team_ids:
                    raise ValueError(f"external user {u.name} is in #{ch.name}, not shared with their team")
                seats[u.id] = seats.get(u.id, 0) + 1
        for u in self.users:
            if u.is_ultra_restricted and seats.get(u.id, 0) > 1:
                raise ValueError(f"single-channel guest {u.name} is in more than one channel")

    def extended(
        self,
        *,
        users: list[UserSeed] | None = None,
        channels: list[ChannelSeed] | None = None,
        external_teams: list[TeamSeed] | None = None,
        add_members: Mapping[str, list[str]] | None = None,
    ) -> WorkspaceSeed:
        """This seed plus more people, channels and partner orgs, validated as a whole.

        `add_members` puts people into channels already seeded: {channel id or name: [user names or ids]}.
        """
        data = self.model_dump()
        data["users"] += [u.model_dump() for u in users or []]
        data["channels"] += [c.model_dump() for c in channels or []]
        data["external_teams"] += [t.model_dump() for t in external_teams or []]
        extra = dict(add_members or {})
        for ch in data["channels"]:
            for ref in (ch["id"], ch["name"], f"#{ch['name']}"):
                ch["members"] += [m for m in extra.pop(ref, []) if m not in ch["members"]]
        if extra:
            raise ValueError(f"add_members names unknown channels {sorted(extra)}")
        return WorkspaceSeed.model_validate(data)


class Timing(_Frozen):
    """Slack's protocol clocks; tests shrink them to keep runs fast."""

    ack_timeout: float = 3.0
    trigger_ttl: float = 3.0
    retry_delays: tuple[float, ...] = (0.0, 60.0, 300.0)
    response_url_ttl: float = 30 * 60.0
    response_url_uses: int = 5

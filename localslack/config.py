"""Seed and timing configuration of an emulated workspace (pydantic models at the caller boundary)."""

from __future__ import annotations

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


class ChannelSeed(_Frozen):
    id: str
    name: str
    is_private: bool = False
    topic: str = ""
    purpose: str = ""
    members: list[str] = Field(default_factory=list, description="user names or ids; 'bot' is the app's bot")


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

    @model_validator(mode="after")
    def _references_resolve(self) -> WorkspaceSeed:
        known = {u.id for u in self.users} | {u.name for u in self.users} | {"bot", self.app.bot_user_id}
        for ch in self.channels:
            missing = [m for m in ch.members if m not in known]
            if missing:
                raise ValueError(f"channel {ch.name} has unknown members {missing}")
        for g in self.usergroups:
            missing = [m for m in g.users if m not in known]
            if missing:
                raise ValueError(f"usergroup {g.handle} has unknown users {missing}")
        return self


class Timing(_Frozen):
    """Slack's protocol clocks; tests shrink them to keep runs fast."""

    ack_timeout: float = 3.0
    trigger_ttl: float = 3.0
    retry_delays: tuple[float, ...] = (0.0, 60.0, 300.0)
    response_url_ttl: float = 30 * 60.0
    response_url_uses: int = 5

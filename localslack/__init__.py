"""localslack: an in-process Slack emulator that slack_sdk and slack_bolt talk to as if it were Slack."""

from localslack.config import (
    AppSeed,
    ChannelSeed,
    SlashCommandSeed,
    TeamSeed,
    Timing,
    UserGroupSeed,
    UserSeed,
    WorkspaceSeed,
)
from localslack.delivery import Delivery
from localslack.driver import DriverError
from localslack.emulator import LocalSlack
from localslack.errors import SlackError
from localslack.model import Channel, Ephemeral, File, Message, User, View

__all__ = [
    "AppSeed",
    "Channel",
    "ChannelSeed",
    "Delivery",
    "DriverError",
    "Ephemeral",
    "File",
    "LocalSlack",
    "Message",
    "SlackError",
    "SlashCommandSeed",
    "TeamSeed",
    "Timing",
    "User",
    "UserGroupSeed",
    "UserSeed",
    "View",
    "WorkspaceSeed",
]

"""Slack's published rate limits as the bot keeps them: a budget per Web API method per workspace,
and chat.postMessage's budget per channel.

Slack answers a call over budget with HTTP 429 and `Retry-After`. Its limits are per app, per
workspace, per method, in tiers (docs.slack.dev/apis/web-api/rate-limits): tier 1 ≈ 1 call/min,
tier 2 ≈ 20, tier 3 ≈ 50, tier 4 ≈ 100, with short bursts allowed; chat.postMessage is "special":
about one message per second per channel, several hundred per minute per workspace. The tier of each
method is from its docs page (the same source as ../shared/reference/slack-platform.md).

The bot keeps a little under each published figure (`SAFETY`): calls granted here reach Slack a
few milliseconds apart in a different order, and a replica's call may be in flight while another's
is granted, so a budget kept exactly would meet the odd 429 at its edge.
"""

from __future__ import annotations

from dataclasses import dataclass

TIER_PER_MINUTE: dict[int, int] = {1: 1, 2: 20, 3: 50, 4: 100}
METHOD_TIER: dict[str, int] = {
    "apps.connections.open": 1,
    "auth.test": 4,
    "bookmarks.add": 2,
    "bookmarks.list": 2,
    "chat.delete": 3,
    "chat.getPermalink": 4,
    "chat.postEphemeral": 4,
    "chat.update": 3,
    "conversations.archive": 2,
    "conversations.create": 2,
    "conversations.history": 3,
    "conversations.info": 3,
    "conversations.invite": 3,
    "conversations.join": 3,
    "conversations.list": 2,
    "conversations.open": 3,
    "conversations.replies": 3,
    "conversations.setTopic": 2,
    "files.completeUploadExternal": 4,
    "files.getUploadURLExternal": 4,
    "pins.add": 2,
    "pins.list": 2,
    "pins.remove": 2,
    "reactions.add": 3,
    "reactions.get": 3,
    "reactions.remove": 3,
    "usergroups.list": 2,
    "usergroups.users.list": 2,
    "users.info": 4,
    "users.list": 2,
    "users.lookupByEmail": 3,
    "views.open": 4,
    "views.publish": 4,
    "views.push": 4,
    "views.update": 4,
}
DEFAULT_TIER = 3  # a method missing from the table is treated as the common tier
POST_METHOD = "chat.postMessage"
POSTS_PER_MINUTE = 300  # "several hundred per minute" per workspace
POSTS_PER_SECOND_PER_CHANNEL = 1.0
SAFETY = 0.9
# Slack tolerates "short bursts" in a channel; localslack allows three, and so does the bot.
CHANNEL_BURST = 3


@dataclass(frozen=True)
class Budget:
    """A token bucket: `burst` calls at once, then one every `interval` seconds.

    `reserve` of the burst is kept for people: work nobody is waiting on (card refreshes,
    announcements) may not take the last `reserve` tokens, so an answer to a person finds one. A
    budget `reserved_near_people` keeps it only while people are near (a channel someone spoke to
    the bot in lately): elsewhere nobody's answer would use it.
    """

    key: str
    interval: float
    burst: int
    reserve: int
    reserved_near_people: bool = False


def method_budget(method: str, scale: float = 1.0) -> Budget:
    """The workspace-wide budget of one Web API method (`scale` times Slack's published one)."""
    per_minute = (
        POSTS_PER_MINUTE if method == POST_METHOD else TIER_PER_MINUTE[METHOD_TIER.get(method, DEFAULT_TIER)]
    ) * scale
    kept = per_minute * SAFETY
    burst = max(1, int(per_minute * SAFETY / 2))
    return Budget(key=f"method:{method}", interval=60.0 / kept, burst=burst, reserve=burst // 5)


def channel_key(channel: str) -> str:
    """The key of a channel's post budget (and of the people seen in it)."""
    return f"channel:{channel}"


def channel_budget(channel: str, scale: float = 1.0) -> Budget:
    """chat.postMessage's budget in one channel: a burst of three, then one a second (a little over);
    the burst's last post is kept for a person's answer while people are in the channel."""
    per_second = POSTS_PER_SECOND_PER_CHANNEL * scale * SAFETY
    burst = max(CHANNEL_BURST, int(per_second))
    return Budget(
        key=channel_key(channel), interval=1.0 / per_second, burst=burst, reserve=1, reserved_near_people=True
    )


def budgets_for(method: str, channel: str | None, scale: float = 1.0) -> tuple[Budget, ...]:
    """Every budget one call spends: its method's, and for a post its channel's too."""
    if method == POST_METHOD and channel:
        return (channel_budget(channel, scale), method_budget(method, scale))
    return (method_budget(method, scale),)

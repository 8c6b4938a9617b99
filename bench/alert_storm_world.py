"""The alert storm's world: a workspace with one public channel per route (the bot in each), the
routes file, localslack with Slack's rate limits on, the bot's environment, and what localslack's
recorder says the bot called.

The budgets are the emulator's own (`localslack.limits`): the report reads them from there and asks
the emulator whether they are on, so it measures whatever the emulator applies.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from bench.alert_storm_plan import LANES
from localslack import LocalSlack, WorkspaceSeed
from localslack.config import ChannelSeed
from localslack.limits import DEFAULT_TIER, PACED_PER_CHANNEL, TIER_PER_MINUTE, per_minute_table
from localslack.recorder import ApiCall

PEOPLE = ["alice", "bob", "carol", "dave", "bot"]


def storm_seed(bot_events: list[str]) -> WorkspaceSeed:
    """The demo workspace plus one public channel per lane, everyone and the bot in it."""
    base = WorkspaceSeed()
    lanes = [
        ChannelSeed(id=lane.channel_id, name=lane.channel, topic=f"{lane.alertname} alerts", members=PEOPLE)
        for lane in LANES
    ]
    return base.model_copy(
        update={
            "app": base.app.model_copy(update={"bot_events": bot_events}),
            "channels": [*base.channels, *lanes],
        }
    )


def write_routes(path: Path) -> Path:
    """One route per lane by alertname; no incidents, so the cards and their threads are all there is."""
    routes = [
        {
            "name": f"storm-{lane.channel}",
            "matchers": [f'alertname="{lane.alertname}"'],
            "channel": lane.channel,
            "runbook": lane.runbook,
            "declare": "never",
            "attach": False,
        }
        for lane in LANES
    ]
    default = {"channel": LANES[0].channel, "declare": "never"}
    path.write_text(yaml.safe_dump({"routes": routes, "default": default}, sort_keys=False))
    return path


def limited_slack(seed: WorkspaceSeed) -> tuple[LocalSlack, str]:
    """localslack applying Slack's budgets, and what it applies (asked of it, not assumed)."""
    slack = LocalSlack(seed, rate_limits=True)
    paced = ", ".join(sorted(PACED_PER_CHANNEL))
    on = "on" if slack.faults.rate_limits_on else "OFF"
    return slack, f"Slack rate limits {on}; paced per channel: {paced or 'nothing'}"


def budget_per_minute(method: str) -> int:
    """The emulator's per-workspace budget for `method` (methods it does not name are Tier 3)."""
    return per_minute_table().get(method) or TIER_PER_MINUTE[DEFAULT_TIER]


def peak_per_minute(times: list[float]) -> int:
    """The most calls in any 60 s window."""
    ordered, start, best = sorted(times), 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= 60.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def calls_by_method(calls: list[ApiCall], since: float) -> list[dict[str, Any]]:
    """Per method from `since` (wall clock): calls, how many into the storm's alert channels (what
    the alert cards spend of a workspace-wide budget, beside the person's work), 429s, other
    failures, budget and peak per minute."""
    alert_channels = {lane.channel_id for lane in LANES}
    recent = [c for c in calls if c.at >= since]
    rows = []
    for method, count in Counter(c.method for c in recent).most_common():
        mine = [c for c in recent if c.method == method]
        accepted = [c.at for c in mine if c.status != 429]
        rows.append(
            {
                "method": method,
                "calls": count,
                "alert_channels": sum(1 for c in mine if c.args.get("channel") in alert_channels),
                "rate_limited": sum(1 for c in mine if c.status == 429),
                "failed": sum(1 for c in mine if c.status != 429 and not c.ok),
                "budget_per_min": budget_per_minute(method),
                "peak_per_min": peak_per_minute(accepted),
            }
        )
    return rows


def bot_env(slack: LocalSlack, *, dsn: str, redis_url: str, data: Path, token: str) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": dsn,
        "REDIS_URL": redis_url,
        "OPSBOT_DATA_DIR": str(data),
        "OPSBOT_LOG_FORMAT": "json",
        "OPSBOT_LOG_LEVEL": "info",
        "OPSBOT_ALERT_TOKEN_ALERTMANAGER": token,
        "OPSBOT_ALERT_ROUTES": str(write_routes(data / "alert-routes.yml")),
    }

"""Alerts in, end to end, with nobody typing: real Prometheus scrapes the sick system, the seed rules
fire, real Alertmanager notifies the running opsbot, and the diagnosed cards appear in localslack.
Silence on a card creates the silence in Alertmanager (`GET /api/v2/silences`); healing the sick
system resolves the other card.

Two groups, because Alertmanager mutes a silenced group's resolved notification too: ServiceDown
(health.services) is healed, CacheHitRateLow (cache.stats) is silenced. Both runbooks read only
operational data, which may be shown in a public channel.
"""

from __future__ import annotations

import json
import secrets
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import yaml

from bot.demo.alerting import ROUTES_EXAMPLE, demo_routes
from bot.demo.system import SickSystem, path_prepended
from localslack import LocalSlack
from localslack.model import Message
from tests.alerts.real_components import (
    alertmanager_get,
    real_alerting,
    require_prometheus,
    sick_system,  # noqa: F401 - fixture
)
from tests.conftest import free_port, running_bot

CHANNEL = "incident-response"


def _card(slack: LocalSlack, alertname: str, status: str) -> Message | None:
    for message in slack.messages(CHANNEL):
        if alertname in (message.text or "") and status in (message.text or ""):
            return message
    return None


def _diagnosis(slack: LocalSlack, card: Message, runbook_id: str) -> Message | None:
    for reply in slack.thread(CHANNEL, card.ts):
        if f"`{runbook_id}`" in json.dumps(reply.blocks or []):
            return reply
    return None


def _routes(tmp_path: Path) -> Path:
    """The example routes with every card in #incident-response and no automatic incident."""
    example = yaml.safe_load(ROUTES_EXAMPLE.read_text())
    path = tmp_path / "routes.yml"
    path.write_text(yaml.safe_dump(demo_routes(example, story_channel=CHANNEL, alerts_channel=CHANNEL)))
    return path


def _silences_for(silences: list[dict[str, Any]], alertname: str) -> list[dict[str, Any]]:
    return [
        silence
        for silence in silences
        if silence["status"]["state"] == "active"
        and {"name": "alertname", "value": alertname}
        in [{"name": m["name"], "value": m["value"]} for m in silence["matchers"]]
    ]


async def test_an_alert_becomes_a_diagnosed_card_is_silenced_and_resolves_with_nobody_typing(
    slack: LocalSlack,
    sick_system: SickSystem,  # noqa: F811
    database_url: str,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    require_prometheus()
    token = secrets.token_urlsafe(16)
    ports = (free_port(), free_port())
    async with AsyncExitStack() as stack:
        # The command target resolves its stand-in programs on PATH while the bot loads it.
        with path_prepended(sick_system.host.bin_dir):
            bot = await stack.enter_async_context(
                running_bot(
                    slack,
                    database_url,
                    data_dir,
                    OPSBOT_TARGETS=str(sick_system.targets_file),
                    OPSBOT_ALERT_TOKEN_ALERTMANAGER=token,
                    OPSBOT_ALERT_ROUTES=str(_routes(tmp_path)),
                    OPSBOT_ALERTMANAGER_URL=f"http://127.0.0.1:{ports[0]}",
                )
            )
        alerting = await stack.enter_async_context(
            real_alerting(
                sick_system,
                tmp_path,
                webhook_url=f"{bot.url}/alerts/alertmanager",
                token=token,
                alerts={"ServiceDown", "CacheHitRateLow"},
                ports=ports,
            )
        )
        down = await slack.wait_for(lambda: _card(slack, "ServiceDown", "FIRING"), timeout=60)
        assert "P0" in down.text
        cache = await slack.wait_for(lambda: _card(slack, "CacheHitRateLow", "FIRING"), timeout=60)
        await slack.wait_for(lambda: _diagnosis(slack, down, "health.services"), timeout=60)
        await slack.wait_for(lambda: _diagnosis(slack, cache, "cache.stats"), timeout=60)

        await slack.click("alice", cache, "alert_silence:1h")
        # The click is acked first; the card says Silenced once Alertmanager has made the silence.
        await slack.wait_for(
            lambda: "Silenced" in json.dumps(slack.message(CHANNEL, cache.ts).blocks), timeout=10
        )
        silences = await alertmanager_get(alerting, "silences")
        assert len(_silences_for(silences, "CacheHitRateLow")) == 1
        assert _silences_for(silences, "ServiceDown") == []

        sick_system.make_healthy()
        await slack.wait_for(lambda: "RESOLVED" in (slack.message(CHANNEL, down.ts).text or ""), timeout=60)

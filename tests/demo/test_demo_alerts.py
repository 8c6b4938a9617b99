"""Alerts in the demo: `opsbot demo` prints where to point an Alertmanager and with which token, and
shortly after start an alert card arrives with nobody typing — from real Prometheus and Alertmanager
when Debian's binaries are installed, else from the stand-in sender, which says it is one (the stand-in
is also tested on its own, so both paths run on a machine that has the binaries)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.alerts.samples import alertmanager_notification
from bot.demo.alerting import DemoAlerts, missing_binaries
from bot.demo.workspace import INCIDENT_CHANNEL, DemoWorkspace
from localslack.model import Message
from tests.alerts.real_components import CapturingWebhook, capturing_webhook  # noqa: F401 - fixture

OPSBOT = str(Path(sys.executable).with_name("opsbot"))
ALERT_LINE = re.compile(
    r"Alerts in: point any Alertmanager at (http://127\.0\.0\.1:\d+/alerts/alertmanager) "
    r"with Authorization: Bearer (\S+)"
)


def _leak_card(demo: DemoWorkspace) -> Message | None:
    for message in demo.slack.messages(INCIDENT_CHANNEL):
        if "DatabaseConnectionLeak" in (message.text or "") and "FIRING" in (message.text or ""):
            return message
    return None


def _diagnosed(demo: DemoWorkspace, card: Message) -> bool:
    return any(
        "`db.connections`" in json.dumps(r.blocks or []) for r in demo.slack.thread(INCIDENT_CHANNEL, card.ts)
    )


@pytest.fixture
def demo_process(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """`opsbot demo` as `make demo` runs it; stopped with Ctrl-C (SIGINT) like a person would."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_", "REDIS_", "OPSBOT_"))
    }
    env["OPSBOT_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen(
        [OPSBOT, "demo", "--port", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


async def test_the_demo_prints_a_receiver_and_token_that_accept_an_alertmanager_notification(
    demo_process: subprocess.Popen[str],
) -> None:
    assert demo_process.stdout is not None
    lines = []
    for line in demo_process.stdout:
        lines.append(line)
        if ALERT_LINE.search(line):
            break
    found = ALERT_LINE.search(lines[-1])
    assert found, "".join(lines)
    url, token = found.groups()
    source = demo_process.stdout.readline()
    if missing_binaries():
        assert source.startswith("STAND-IN alert sender"), source
    else:
        assert source.startswith("Real Prometheus (http://127.0.0.1:"), source
    body = alertmanager_notification("cache")
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body, headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 200, await response.text()
        async with session.post(url, json=body, headers={"Authorization": "Bearer wrong"}) as response:
            assert response.status == 401


async def test_a_diagnosed_alert_card_arrives_in_the_demo_with_nobody_typing(tmp_path: Path) -> None:
    async with DemoWorkspace.running(tmp_path / "data") as demo:
        await demo.alerts.ready.wait()
        expected = "STAND-IN" if missing_binaries() else "Real Prometheus"
        assert demo.alerts.source.startswith(expected)
        card = await demo.slack.wait_for(lambda: _leak_card(demo), timeout=60)
        assert "P0" in card.text
        await demo.slack.wait_for(lambda: _diagnosed(demo, card), timeout=60)
        if missing_binaries():
            return
        # What bob's approved termination does in the walkthrough: the real count drops, the rule
        # resolves, and Alertmanager's `resolved` turns the card.
        await demo.system.close_leaked_connections()
        await demo.slack.wait_for(
            lambda: "RESOLVED" in (demo.slack.message(INCIDENT_CHANNEL, card.ts).text or ""), timeout=60
        )


async def test_without_prometheus_the_stand_in_posts_an_alertmanager_notification_and_says_so(
    tmp_path: Path,
    capturing_webhook: CapturingWebhook,  # noqa: F811
) -> None:
    alerts = DemoAlerts(tmp_path, story_channel=INCIDENT_CHANNEL, alerts_channel="alerts", real=False)
    assert "OPSBOT_ALERTMANAGER_URL" not in alerts.bot_settings()
    bot_url = capturing_webhook.url.removesuffix("/alerts/alertmanager")
    async with alerts.delivering(bot_url=bot_url, metrics_url="http://127.0.0.1:9/metrics"):
        received = await capturing_webhook.wait_for(lambda item: True, timeout=10)
    assert alerts.source.startswith("STAND-IN alert sender")
    assert received.authorization == f"Bearer {alerts.token}"
    assert received.body["version"] == "4"
    assert received.body["commonLabels"]["alertname"] == "DatabaseConnectionLeak"
    assert received.body["commonLabels"]["runbook"] == "db.connections"

"""The real-components harness: a seed rule fires in real Prometheus, real Alertmanager posts its
webhook (version 4) with the bearer token, and healing the sick system sends `resolved`.

The payloads Alertmanager really sent are kept in tests/alerts/fixtures/ for the payload model tests;
`OPSBOT_SAVE_ALERT_FIXTURES=1` rewrites them from this run, otherwise this run's payloads are checked
to have the same shape (keys of the notification and of each alert) as the kept ones.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bot.demo.system import SickSystem
from tests.alerts.real_components import (
    FIXTURES,
    CapturingWebhook,
    Received,
    alertmanager_get,
    capturing_webhook,  # noqa: F401 - fixture
    real_alerting,
    save_fixture,
    sick_system,  # noqa: F401 - fixture
)

TOKEN = "harness-token-7f3a"


def _group(item: Received, status: str) -> bool:
    return item.body.get("status") == status and item.body.get("groupLabels", {}).get("alertname") == (
        "APIHighErrorRate"
    )


def _shape(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    return sorted(body), sorted(body["alerts"][0])


def _keep_or_compare(name: str, body: dict[str, Any]) -> None:
    if os.environ.get("OPSBOT_SAVE_ALERT_FIXTURES") == "1":
        save_fixture(name, body)
    kept = json.loads((FIXTURES / name).read_text("utf-8"))
    assert _shape(body) == _shape(kept)


async def test_a_seed_rule_fires_through_real_alertmanager_and_resolves_when_healed(
    sick_system: SickSystem,  # noqa: F811
    capturing_webhook: CapturingWebhook,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with real_alerting(
        sick_system,
        tmp_path,
        webhook_url=capturing_webhook.url,
        token=TOKEN,
        alerts={"APIHighErrorRate"},
    ) as stack:
        firing = await capturing_webhook.wait_for(lambda item: _group(item, "firing"), timeout=60)
        assert firing.authorization == f"Bearer {TOKEN}"
        body = firing.body
        assert body["version"] == "4"
        assert body["groupLabels"] == {"alertname": "APIHighErrorRate", "service": "api"}
        # The warning twin is inhibited by the critical alert: only the page goes out.
        assert [alert["labels"]["severity"] for alert in body["alerts"]] == ["critical"]
        labels = body["alerts"][0]["labels"]
        assert labels["runbook"] == "api.errors"
        assert body["alerts"][0]["annotations"]["summary"] == "API 5xx error rate above 5 %"
        assert body["alerts"][0]["generatorURL"].startswith(stack.prometheus_url)
        active = await alertmanager_get(stack, "alerts?active=true")
        assert {alert["labels"]["severity"] for alert in active} == {"critical", "warning"}
        _keep_or_compare("alertmanager_v4_firing.json", body)

        sick_system.make_healthy()
        resolved = await capturing_webhook.wait_for(lambda item: _group(item, "resolved"), timeout=90)
        assert resolved.body["alerts"][0]["status"] == "resolved"
        assert resolved.body["alerts"][0]["endsAt"] > resolved.body["alerts"][0]["startsAt"]
        _keep_or_compare("alertmanager_v4_resolved.json", resolved.body)

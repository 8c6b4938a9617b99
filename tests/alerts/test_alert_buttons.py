"""The alert card's buttons, clicked in localslack and delivered to the running bot as Slack would:
Declare (the route's severity, the alert's start as detected), Attach to the service's open
incident, Acknowledge (on the card, and no automatic declare after it), and bad or stale clicks
answered with one short line."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.render import alert as render
from bot.server import BotServer
from localslack import LocalSlack
from localslack.model import Ephemeral, Message
from tests.alerts.test_alert_service import (  # noqa: F401 - fixtures used by name
    STARTED,
    add_alerts_channel,
    alert,
    app_db,
    cards,
    notification,
    runbooks_dir,
)
from tests.conftest import running_bot

# Warnings are offered, criticals declared: an escalation declares unless someone acknowledged it.
ROUTES = """
routes:
  - name: executions-critical
    matchers: ['alertname="ExecutionsHigh"', 'severity="critical"']
    channel: alerts
    runbook: test.counter
    declare: auto
    attach: false
  - name: executions
    matchers: ['alertname="ExecutionsHigh"']
    channel: alerts
    runbook: test.counter
    declare: offer
    attach: false
default: {channel: alerts, declare: never}
"""


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    path = tmp_path / "routes.yml"
    path.write_text(ROUTES)
    return path


@pytest.fixture
async def alert_bot(
    slack: LocalSlack,
    database_url: str,
    data_dir: Path,
    targets_file: Path,
    runbooks_dir: Path,  # noqa: F811 - the imported fixture
    routes_file: Path,
    app_db: str,  # noqa: F811 - the imported fixture
) -> AsyncIterator[BotServer]:
    add_alerts_channel(slack)
    async with running_bot(
        slack,
        database_url,
        data_dir,
        OPSBOT_TARGETS=str(targets_file),
        OPSBOT_RUNBOOKS=str(runbooks_dir),
        OPSBOT_ALERT_ROUTES=str(routes_file),
    ) as server:
        yield server


def button(card: Message, action_id: str) -> dict[str, Any] | None:
    for block in card.blocks or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return dict(element)
    return None


async def answer(slack: LocalSlack, user: str, containing: str) -> Ephemeral:
    def found() -> Ephemeral | None:
        return next((e for e in slack.ephemerals(user) if containing in e.text), None)

    return await slack.wait_for(found, timeout=10)


async def settle(bot: BotServer) -> None:
    """Until the clicks' background work is done (the bot's own in-flight gauge reads 0)."""
    assert bot.runtime is not None
    registry = bot.runtime.metrics.registry
    deadline = asyncio.get_running_loop().time() + 10
    while registry.get_sample_value("opsbot_background_tasks") != 0:
        assert asyncio.get_running_loop().time() < deadline, "background work did not finish"
        await asyncio.sleep(0.02)


async def test_declare_from_the_card_uses_the_routes_severity_and_the_alerts_start(
    slack: LocalSlack, alert_bot: BotServer
) -> None:
    runtime = alert_bot.runtime
    assert runtime is not None
    await runtime.services.alerts.receive(notification(alert("a1")))
    [card] = cards(slack)
    assert button(card, render.DECLARE) is not None
    assert button(card, render.DECLARE)["text"]["text"] == "Declare P2"  # type: ignore[index]
    await slack.click("alice", card, render.DECLARE)
    await answer(slack, "alice", "Declaring P2")
    await settle(alert_bot)
    [incident] = await runtime.incidents.store.open_incidents()
    assert incident.severity == "p2" and incident.declared_by == slack.user("alice").id
    kinds = {e.kind: e for e in await runtime.incidents.store.timeline(incident.id)}
    assert kinds["detected"].at == STARTED
    assert "alert" in kinds, "the incident's timeline links the card"
    [card] = cards(slack)
    assert f"🚨 Incident *{incident.id}*" in str(card.blocks)
    assert button(card, render.DECLARE) is None, "declared once: the button is gone"


async def test_attach_to_the_services_open_incident(slack: LocalSlack, alert_bot: BotServer) -> None:
    runtime = alert_bot.runtime
    assert runtime is not None
    incident = await runtime.incidents.declare(
        title="checkout is slow", severity="p1", user=slack.user("alice").id, service="checkout"
    )
    result = await runtime.services.alerts.receive(notification(alert("a1")))
    assert result.incident_action == "offered"
    [card] = cards(slack)
    offered = button(card, render.ATTACH)
    assert offered is not None and offered["text"]["text"] == f"Attach to {incident.id}"
    await slack.click("carol", card, render.ATTACH)
    await answer(slack, "carol", f"Attached to *{incident.id}*")
    await settle(alert_bot)
    [card] = cards(slack)
    assert f"🚨 Incident *{incident.id}* — <#{incident.channel_id}>" in str(card.blocks)
    assert incident.channel_id is not None
    assert [m for m in slack.messages(incident.channel_id) if "🔔 Alert attached" in m.text]
    entries = [e for e in await runtime.incidents.store.timeline(incident.id) if e.kind == "alert"]
    assert len(entries) == 1 and entries[0].actor == slack.user("carol").id


async def test_acknowledge_shows_who_and_stops_the_automatic_declare(
    slack: LocalSlack, alert_bot: BotServer
) -> None:
    runtime = alert_bot.runtime
    assert runtime is not None
    alerts = runtime.services.alerts
    await alerts.receive(notification(alert("a1")))
    [card] = cards(slack)
    await slack.click("bob", card, render.ACK)
    await answer(slack, "bob", "Acknowledged")
    await settle(alert_bot)
    [card] = cards(slack)
    assert f"👀 Acknowledged by <@{slack.user('bob').id}>" in str(card.blocks)
    assert button(card, render.ACK) is None
    # Routes read the common labels: a notification whose alerts are all critical takes the auto route.
    escalated = await alerts.receive(notification(alert("a2", severity="critical")))
    assert escalated.incident_action != "declared"
    assert await runtime.incidents.store.open_incidents() == []


async def test_an_unacknowledged_escalation_declares(slack: LocalSlack, alert_bot: BotServer) -> None:
    """The control for the test above: the same escalation, nobody acknowledged, declares."""
    runtime = alert_bot.runtime
    assert runtime is not None
    alerts = runtime.services.alerts
    await alerts.receive(notification(alert("a1")))
    escalated = await alerts.receive(notification(alert("a2", severity="critical")))
    assert escalated.incident_action == "declared"
    [incident] = await runtime.incidents.store.open_incidents()
    assert incident.severity == "p0"


async def test_unreadable_and_stale_buttons_are_answered(
    slack: LocalSlack, alert_bot: BotServer, database_url: str
) -> None:
    runtime = alert_bot.runtime
    assert runtime is not None
    result = await runtime.services.alerts.receive(notification(alert("a1")))
    [card] = cards(slack)
    ack = button(card, render.ACK)
    assert ack is not None
    for block in card.blocks or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == render.ACK:
                element["value"] = '{"group": "1; DROP TABLE alert_groups"}'
    await slack.click("bob", card, render.ACK)
    await answer(slack, "bob", "cannot read")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("DELETE FROM alert_groups WHERE id = %s", (result.group_id,))
    await slack.click("alice", card, render.DECLARE)
    await answer(slack, "alice", "no longer knows that alert card")
    assert await runtime.incidents.store.open_incidents() == []

"""The alert card: hostile labels stay text, the buttons follow the group's state, the hash changes
only with what a person sees, and a card full of labels still fits Slack (posted to localslack,
which refuses what Slack would)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.alerts.store import AlertGroup
from bot.render import alert as render
from bot.runtime import Runtime
from localslack import LocalSlack
from tests.alerts.test_alert_service import (  # noqa: F401 - fixtures used by name
    alert,
    app_db,
    cards,
    notification,
    routes_file,
    runbooks_dir,
    runtime,
)

AT = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
HOSTILE = "<!channel> <@U0ALICE> <https://evil.example|click> & more"


def group(**changes: Any) -> AlertGroup:
    base: dict[str, Any] = {
        "id": 7,
        "source": "alertmanager",
        "group_key": '{}:{alertname="ExecutionsHigh"}',
        "route": "executions",
        "channel": "alerts",
        "channel_id": "C0ALERTS",
        "card_ts": "1.1",
        "card_hash": None,
        "status": "firing",
        "severity": "p0",
        "service": "checkout",
        "runbook_id": "test.counter",
        "declare": "offer",
        "group_labels": {"alertname": "ExecutionsHigh", "service": "checkout"},
        "common_labels": {"alertname": "ExecutionsHigh", "service": "checkout", "severity": "critical"},
        "common_annotations": {"summary": "Too many executions"},
        "first_seen": AT,
        "last_seen": AT,
        "last_change": AT,
        "starts_at": AT,
        "resolved_at": None,
        "acked_by": None,
        "acked_at": None,
        "silence_id": None,
        "silenced_by": None,
        "silence_until": None,
        "silence_until_resolved": False,
        "incident_id": None,
        "incident_channel": None,
        "attach_offer": None,
        "diagnosed": True,
        "diagnosed_severity": "p0",
        "declare_claimed": False,
        "flapping": False,
    }
    return AlertGroup.model_validate({**base, **changes})


def shown(g: AlertGroup, *, silence_offered: bool = True) -> str:
    view = render.AlertCard(g, firing=2, resolved=1, silence_offered=silence_offered)
    return json.dumps(render.card(view), ensure_ascii=False)


def mrkdwn(blocks: list[dict[str, Any]]) -> str:
    """Every block Slack reads as mrkdwn (the header is plain text: a mention there is just text)."""
    return json.dumps([b for b in blocks if b["type"] != "header"], ensure_ascii=False)


def actions(g: AlertGroup, *, silence_offered: bool = True) -> list[str]:
    blocks = render.card(render.AlertCard(g, firing=1, resolved=0, silence_offered=silence_offered))
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def test_the_card_says_what_fires_how_bad_and_since_when() -> None:
    g = group()
    assert render.card_text(g) == "🔴 FIRING P0: ExecutionsHigh — Too many executions"
    text = shown(g)
    assert "2 firing · 1 resolved" in text
    assert "P0 (`critical`)" in text
    assert "`service=checkout`" in text and "`alertname=" not in text
    assert "`test.counter` (diagnosis in the thread)" in text
    assert f"<!date^{int(AT.timestamp())}^" in text


def test_hostile_labels_and_annotations_stay_text() -> None:
    g = group(
        common_labels={"alertname": "X", "team": HOSTILE},
        common_annotations={"summary": HOSTILE, "description": HOSTILE, "runbook_url": "javascript:alert(1)"},
    )
    text = mrkdwn(render.card(render.AlertCard(g, firing=1, resolved=0, silence_offered=True)))
    text += render.card_text(g)
    assert "<!channel>" not in text and "<@U0ALICE>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt;" in text
    assert "|runbook>" not in text, "only a plain http(s) URL becomes a link"
    sneaky = group(common_annotations={"runbook_url": "https://x.example/a|evil>"})
    assert "|runbook>" not in shown(sneaky)
    plain = group(common_annotations={"runbook_url": "https://runbooks.example/db.connections"})
    assert "<https://runbooks.example/db.connections|runbook>" in shown(plain)


def test_buttons_follow_the_groups_state() -> None:
    silences = [f"{render.SILENCE}:1h", f"{render.SILENCE}:4h", f"{render.SILENCE}:resolved"]
    assert actions(group()) == [render.DECLARE, render.ACK, *silences]
    assert actions(group(), silence_offered=False) == [render.DECLARE, render.ACK]
    assert actions(group(declare="never")) == [render.ACK, *silences]
    assert actions(group(attach_offer="INC-2026-0001"))[:2] == [render.DECLARE, render.ATTACH]
    acked = group(acked_by="U0BOB", acked_at=AT + timedelta(minutes=3))
    assert render.ACK not in actions(acked)
    assert "👀 Acknowledged by <@U0BOB>" in shown(acked)
    silenced = group(silence_id="b0c1", silenced_by="alice", silence_until=AT + timedelta(hours=1))
    assert actions(silenced) == [render.DECLARE, render.ACK, render.EXPIRE]
    assert "🔕 Silenced by alice until <!date^" in shown(silenced)
    declared = group(incident_id="INC-2026-0002", incident_channel="C0INC")
    assert render.DECLARE not in actions(declared)
    assert "🚨 Incident *INC-2026-0002* — <#C0INC>" in shown(declared)
    resolved = group(status="resolved", resolved_at=AT + timedelta(minutes=72))
    assert actions(resolved) == []
    assert "✅ Resolved after 1 h 12 min" in shown(resolved)
    assert render.card_text(resolved).startswith("✅ RESOLVED P0")


def test_the_hash_changes_only_with_what_a_person_sees() -> None:
    def digest(g: AlertGroup) -> str:
        view = render.AlertCard(g, firing=1, resolved=0, silence_offered=True)
        return render.card_hash(render.card_text(g), render.card(view))

    assert digest(group()) == digest(group(last_seen=AT + timedelta(hours=4)))
    assert digest(group()) != digest(group(acked_by="U0BOB", acked_at=AT))
    assert digest(group()) != digest(group(flapping=True))


async def test_a_card_full_of_hostile_labels_fits_slack(
    slack: LocalSlack,
    runtime: Runtime,  # noqa: F811 - the imported fixture
) -> None:
    labels = {f"label_{i:02d}": HOSTILE * 3 for i in range(60)}
    plain = alert("a1")
    hostile = plain.model_copy(update={"labels": {**plain.labels, **labels}})
    await runtime.services.alerts.receive(notification(hostile))
    [card] = cards(slack)
    text = mrkdwn(card.blocks or [])
    assert "<!channel>" not in text and "and 51 more" in text

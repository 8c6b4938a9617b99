"""AlertService.receive against real PostgreSQL and localslack: one card per group kept current,
the routed diagnosis once in its thread (once across two replicas too), new alerts, resolutions,
the flapping bound and a warn → crit re-diagnosis. Helpers here are shared by the other alert tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from bot.alerts.model import Alert, Notification
from bot.config import load_settings
from bot.postmortem.builder import build
from bot.runtime import Runtime
from localslack import LocalSlack
from localslack.config import ChannelSeed
from localslack.model import Message
from tests.approvals.conftest import COUNTER
from tests.conftest import bot_env
from tests.incidents.conftest import CHECKLIST

ROUTES = """
routes:
  - name: executions
    matchers: ['alertname="ExecutionsHigh"']
    channel: alerts
    runbook: test.counter
    declare: offer
  - name: checkout-down
    matchers: ['alertname="CheckoutDown"']
    channel: alerts
    runbook: test.counter
    declare: auto
default: {channel: alerts, declare: never}
"""
STARTED = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def runbooks_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "runbooks"
    directory.mkdir()
    for sev in ("p0", "p1", "p2"):
        (directory / f"{sev}.yml").write_text(CHECKLIST.format(sev=sev, sev_upper=sev.upper()))
    (directory / "counter.yml").write_text(COUNTER)
    return directory


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    path = tmp_path / "routes.yml"
    path.write_text(ROUTES)
    return path


@pytest.fixture
async def app_db(app_db_url: str) -> str:
    async with await psycopg.AsyncConnection.connect(app_db_url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE executions (id serial PRIMARY KEY, at timestamptz DEFAULT now())")
    return app_db_url


@asynccontextmanager
async def started_runtime(
    slack: LocalSlack,
    database_url: str,
    data_dir: Path,
    targets_file: Path,
    runbooks_dir: Path,
    routes_file: Path,
    **extra: str,
) -> AsyncIterator[Runtime]:
    env = bot_env(
        slack,
        database_url,
        data_dir,
        OPSBOT_TARGETS=str(targets_file),
        OPSBOT_RUNBOOKS=str(runbooks_dir),
        OPSBOT_ALERT_ROUTES=str(routes_file),
        **extra,
    )
    runtime = await Runtime.start(load_settings(**env))
    try:
        yield runtime
    finally:
        await runtime.close()


def add_alerts_channel(slack: LocalSlack) -> None:
    """#alerts, with people but without the bot: the first card makes it join."""
    slack.extend(channels=[ChannelSeed(id="C0ALERTS", name="alerts", members=["alice", "bob", "carol"])])


@pytest.fixture
async def runtime(
    slack: LocalSlack,
    database_url: str,
    data_dir: Path,
    targets_file: Path,
    runbooks_dir: Path,
    routes_file: Path,
    app_db: str,
) -> AsyncIterator[Runtime]:
    add_alerts_channel(slack)
    async with started_runtime(slack, database_url, data_dir, targets_file, runbooks_dir, routes_file) as rt:
        yield rt


def alert(
    fingerprint: str,
    status: str = "firing",
    *,
    name: str = "ExecutionsHigh",
    severity: str = "warning",
    service: str = "checkout",
    starts: datetime = STARTED,
    **labels: str,
) -> Alert:
    return Alert(
        fingerprint=fingerprint,
        status=status,
        labels={"alertname": name, "severity": severity, "service": service, **labels},
        annotations={"summary": f"{name} on {service}"},
        starts_at=starts,
        ends_at=starts + timedelta(minutes=12) if status == "resolved" else None,
    )


def notification(*alerts: Alert, key: str | None = None) -> Notification:
    first = alerts[0].labels
    group = {"alertname": first["alertname"], "service": first["service"]}
    common = {k: v for k, v in first.items() if all(a.labels.get(k) == v for a in alerts)}
    return Notification(
        source="alertmanager",
        group_key=key or f'{{}}:{{alertname="{group["alertname"]}", service="{group["service"]}"}}',
        status="firing" if any(a.status == "firing" for a in alerts) else "resolved",
        group_labels=group,
        common_labels=common,
        common_annotations={"summary": f"{first['alertname']} on {first['service']}"},
        external_url="http://alertmanager.example:9093",
        alerts=list(alerts),
    )


def cards(slack: LocalSlack) -> list[Message]:
    return slack.messages("alerts")


def diagnoses_in(slack: LocalSlack, card: Message) -> list[Message]:
    return [m for m in slack.thread("alerts", card.ts) if m.text.startswith("Alert: ")]


async def settle(runtime: Runtime) -> None:
    await runtime.tasks.drain(10)


# --- one card per group ---------------------------------------------------------------------


async def test_a_new_group_gets_one_card_and_one_diagnosis_in_its_thread(
    slack: LocalSlack, runtime: Runtime
) -> None:
    result = await runtime.services.alerts.receive(notification(alert("a1"), alert("a2", instance="db-2")))
    assert result.outcome == "new" and result.diagnosed
    [card] = cards(slack)
    assert card.ts == result.card_ts
    assert card.text == "🟠 FIRING P2: ExecutionsHigh — ExecutionsHigh on checkout"
    assert "2 firing · 0 resolved" in str(card.blocks)
    [diagnosis] = diagnoses_in(slack, card)
    assert "Execution counter" in diagnosis.text
    assert len(slack.calls("chat.update")) == 0


async def test_repeats_retries_and_a_second_peer_update_the_one_card_in_place(
    slack: LocalSlack, runtime: Runtime
) -> None:
    alerts = runtime.services.alerts
    first = notification(alert("a1"))
    await alerts.receive(first)
    metrics = runtime.metrics.registry
    duplicate = {"source": "alertmanager", "outcome": "duplicate"}
    assert not metrics.get_sample_value("opsbot_alert_notifications_total", duplicate)
    again = await alerts.receive(first)  # Alertmanager's repeat, a retry, or the HA peer's copy
    assert again.outcome == "duplicate"
    assert len(slack.calls("chat.update")) == 0, "an identical repeat does not even redraw"
    assert metrics.get_sample_value("opsbot_alert_notifications_total", duplicate) == 1
    assert metrics.get_sample_value("opsbot_alert_card_latency_seconds_count") == 2
    grown = await alerts.receive(notification(alert("a1"), alert("a2", instance="db-2")))
    assert grown.outcome == "updated"
    assert len(cards(slack)) == 1, "never a message per repeat"
    assert len(slack.calls("chat.update")) == 1
    [card] = cards(slack)
    assert "2 firing · 0 resolved" in str(card.blocks)
    # The thread reply may still be waiting for the channel's pace when the card is drawn.
    news = await slack.wait_for(
        lambda: [m.text for m in slack.thread("alerts", card.ts) if m.text.startswith("🔥")]
    )
    assert news == ["🔥 New alert: `instance=db-2`"]
    assert len(diagnoses_in(slack, card)) == 1, "a new alert in a diagnosed group is not re-diagnosed"


async def test_a_card_held_back_by_slack_goes_out_with_the_newest_state_not_the_one_it_queued_with(
    slack: LocalSlack, runtime: Runtime
) -> None:
    alerts = runtime.services.alerts
    await alerts.receive(notification(alert("a1")))
    slack.faults.rate_limit("chat.update", calls=1, per_seconds=3.0)
    await alerts.receive(notification(alert("a1"), alert("a2", instance="db-2")))  # takes the one update
    # Slack refuses the next update for 3 s; the group changes twice more meanwhile.
    held = asyncio.ensure_future(
        alerts.receive(notification(alert("a1"), alert("a2", instance="db-2"), alert("a3", instance="db-3")))
    )
    await slack.wait_for(lambda: [c for c in slack.calls("chat.update") if c.status == 429])
    newest = (
        alert("a1"),
        alert("a2", instance="db-2"),
        alert("a3", instance="db-3"),
        alert("a4", instance="db-4"),
    )
    await alerts.receive(notification(*newest))
    await held
    [card] = cards(slack)
    # After a 429 the bot takes the budget for spent: the update waits out Retry-After and a few turns more.
    await slack.wait_for(
        lambda: "4 firing · 0 resolved" in str(slack.message("alerts", card.ts).blocks), timeout=20
    )
    await settle(runtime)
    sent = [str(c.args.get("blocks")) for c in slack.calls("chat.update") if c.status == 200]
    assert len(sent) == 2, "the update Slack held back went out once, drawn again when it went"
    assert "4 firing · 0 resolved" in sent[-1]


async def test_resolving_says_so_with_its_duration(slack: LocalSlack, runtime: Runtime) -> None:
    alerts = runtime.services.alerts
    await alerts.receive(notification(alert("a1"), alert("a2", instance="db-2")))
    await alerts.receive(notification(alert("a1", "resolved"), alert("a2", instance="db-2")))
    [card] = cards(slack)
    assert "1 firing · 1 resolved" in str(card.blocks)
    resolved_one = await slack.wait_for(
        lambda: (r := slack.last_reply("alerts", card.ts)) and r.text.startswith("✅ Resolved") and r
    )
    assert resolved_one.text == "✅ Resolved: `a1`"
    result = await alerts.receive(
        notification(alert("a1", "resolved"), alert("a2", "resolved", instance="db-2"))
    )
    assert result.outcome == "updated"
    [card] = cards(slack)
    assert card.text.startswith("✅ RESOLVED")
    assert "✅ Resolved after 12 min" in str(card.blocks)
    last = await slack.wait_for(
        lambda: (r := slack.last_reply("alerts", card.ts)) and r.text.startswith("✅ Resolved after") and r
    )
    assert last.text == "✅ Resolved after 12 min"


async def test_flapping_is_bounded_but_its_state_is_kept(slack: LocalSlack, runtime: Runtime) -> None:
    alerts = runtime.services.alerts
    await alerts.receive(notification(alert("a1"), alert("b1", instance="db-2")))
    for flip in range(8):
        start = STARTED + timedelta(minutes=flip + 1)
        status = "resolved" if flip % 2 == 0 else "firing"
        await alerts.receive(notification(alert("a1"), alert("b1", status, instance="db-2", starts=start)))
    [card] = cards(slack)
    changes = [m for m in slack.thread("alerts", card.ts) if not m.text.startswith("Alert: ")]
    assert len(changes) == 5, "at most 5 thread replies per group per 10 minutes"
    assert "Flapping" in str(card.blocks)
    result = await alerts.receive(notification(alert("a1"), alert("b1", "resolved", instance="db-2")))
    events = await alerts.store.events(result.group_id)
    assert sum(1 for kind, _, posted in events if kind == "change" and not posted) >= 3, "state still kept"


async def test_a_storm_of_changes_becomes_one_reply_once_the_group_settles(
    slack: LocalSlack,
    database_url: str,
    data_dir: Path,
    targets_file: Path,
    runbooks_dir: Path,
    routes_file: Path,
    app_db: str,
) -> None:
    add_alerts_channel(slack)
    async with started_runtime(
        slack,
        database_url,
        data_dir,
        targets_file,
        runbooks_dir,
        routes_file,
        OPSBOT_ALERT_SETTLE_SECONDS="1",
    ) as runtime:
        alerts = runtime.services.alerts
        grown = [alert("a1")]
        await alerts.receive(notification(*grown))
        for n in range(2, 8):
            grown.append(alert(f"a{n}", instance=f"db-{n}"))
            await alerts.receive(notification(*grown))
        [card] = cards(slack)

        def changes() -> list[Message]:
            return [m for m in slack.thread("alerts", card.ts) if m.text.startswith("🔥")]

        assert changes() == [], "nothing is said while the group is still changing"
        [reply] = await slack.wait_for(lambda: changes() or None, timeout=10)
        assert reply.text.splitlines() == [f"🔥 New alert: `instance=db-{n}`" for n in range(2, 8)]
        await asyncio.sleep(1.5)
        assert len(changes()) == 1, "the settled changes are said once"
        assert "7 firing · 0 resolved" in str(cards(slack)[0].blocks)


async def test_warn_to_crit_rediagnoses_once(slack: LocalSlack, runtime: Runtime) -> None:
    alerts = runtime.services.alerts
    await alerts.receive(notification(alert("a1")))
    escalated = notification(alert("a1"), alert("a2", severity="critical", instance="db-2"))
    assert (await alerts.receive(escalated)).diagnosed
    assert not (await alerts.receive(escalated)).diagnosed
    [card] = cards(slack)
    assert card.text.startswith("🔴 FIRING P0")
    assert len(diagnoses_in(slack, card)) == 2


async def test_two_replicas_receiving_the_same_notification_post_one_card_and_one_diagnosis(
    slack: LocalSlack,
    database_url: str,
    tmp_path: Path,
    targets_file: Path,
    runbooks_dir: Path,
    routes_file: Path,
    app_db: str,
) -> None:
    add_alerts_channel(slack)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    async with (
        started_runtime(
            slack, database_url, tmp_path / "one", targets_file, runbooks_dir, routes_file
        ) as one,
        started_runtime(
            slack, database_url, tmp_path / "two", targets_file, runbooks_dir, routes_file
        ) as two,
    ):
        same = notification(alert("a1"), alert("a2", instance="db-2"))
        results = await asyncio.gather(one.services.alerts.receive(same), two.services.alerts.receive(same))
    assert sorted(r.outcome for r in results) == ["duplicate", "new"]
    assert [r.diagnosed for r in results].count(True) == 1
    [card] = cards(slack)
    assert len(diagnoses_in(slack, card)) == 1
    assert len(slack.calls("chat.postMessage", ok=True)) == 2, "the card and the diagnosis, nothing twice"


# --- incidents ------------------------------------------------------------------------------


async def action_and_approval_rows(runtime: Runtime) -> int:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM approval_requests")
        row = await cur.fetchone()
    return int(row[0]) if row else -1


async def test_auto_declare_puts_the_alerts_start_as_detected_and_never_runs_a_change(
    slack: LocalSlack, runtime: Runtime, app_db: str
) -> None:
    down = notification(alert("c1", name="CheckoutDown", severity="critical"))
    result = await runtime.services.alerts.receive(down)
    assert result.incident_action == "declared" and result.incident_id is not None
    again = await runtime.services.alerts.receive(down)
    assert again.incident_action == "none" and again.incident_id == result.incident_id, "declared once"
    incident = await runtime.incidents.store.get(result.incident_id)
    assert incident is not None and incident.severity == "p0" and incident.service == "checkout"
    detected = [e for e in await runtime.incidents.store.timeline(incident.id) if e.kind == "detected"]
    assert [e.at for e in detected] == [STARTED]
    draft = build(await runtime.reviews.facts(incident))
    [milestone] = [m for m in draft.milestones if m.name == "Incident detected"]
    assert milestone.at == STARTED
    [card] = cards(slack)
    assert f"🚨 Incident *{incident.id}* — <#{incident.channel_id}>" in str(card.blocks)
    assert incident.channel_id is not None
    linked = [m for m in slack.messages(incident.channel_id) if "🔔 Alert declared" in m.text]
    assert len(linked) == 1 and "https://" in linked[0].text, "the incident channel links the card"
    assert await action_and_approval_rows(runtime) == 0, "an alert never requests or runs an action"
    async with await psycopg.AsyncConnection.connect(app_db) as conn:
        cur = await conn.execute("SELECT count(*) FROM executions")
        assert await cur.fetchone() == (0,)


async def test_an_alert_for_a_service_with_an_open_incident_is_attached(
    slack: LocalSlack, runtime: Runtime
) -> None:
    open_incident = await runtime.incidents.declare(
        title="checkout is slow", severity="p1", user=slack.user("alice").id, service="checkout"
    )
    result = await runtime.services.alerts.receive(notification(alert("a1")))
    assert result.incident_action == "attached" and result.incident_id == open_incident.id
    [card] = cards(slack)
    assert f"🚨 Incident *{open_incident.id}* — <#{open_incident.channel_id}>" in str(card.blocks)
    entries = [e for e in await runtime.incidents.store.timeline(open_incident.id) if e.kind == "alert"]
    assert len(entries) == 1 and "ExecutionsHigh" in entries[0].text
    assert open_incident.channel_id is not None
    assert [m for m in slack.messages(open_incident.channel_id) if "🔔 Alert attached" in m.text]
    replies = [m.text for m in slack.thread("alerts", card.ts)]
    assert f"🚨 Attached *{open_incident.id}* — <#{open_incident.channel_id}>" in replies

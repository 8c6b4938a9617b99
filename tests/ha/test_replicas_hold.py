"""Three replicas behind HAProxy, one SIGKILLed and restarted every 15 s under a mixed on-call load,
lose and double nothing (issue #20).

30 s in `make test`; `make soak` (or `OPSBOT_HA_SECONDS=120 pytest -s tests/ha`) drives it for 2 minutes.
The figures table is printed with `-s`.
"""

from __future__ import annotations

import asyncio
import os
import time

import psycopg
import pytest

from localslack import LocalSlack
from tests.ha import load
from tests.ha.cluster import Cluster
from tests.ha.conftest import ALERT_TOKEN, TIMER_SCALE
from tests.ha.figures import Figures, from_slack_and_proxy, from_store, pin_entries

HA_SECONDS = float(os.environ.get("OPSBOT_HA_SECONDS", "30"))
KILL_EVERY = 15.0
# A job taken by a killed replica stays `doing` until the bot's stalled-job sweep (45 s after its
# worker's last heartbeat, swept every 15 s) puts it back: the drain waits that long, no longer.
STALLED_REQUEUE_S = 140.0
LEFT_IN_QUEUE = (
    # A diagnosis whose replica was killed waits for its take-over job (due ~1 minute after the ack).
    "SELECT (SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing'))"
    # A card whose painter was killed is drawn by another replica once its lease lapses (20 s) and
    # the card sweep (every minute) comes round.
    " + (SELECT count(*) FROM alert_groups WHERE card_ts IS NULL OR drawn_version < version)"
)
P0_REMINDER_S = 10 * 60 * TIMER_SCALE
P0_TIERS_S = {2: 15 * 60 * TIMER_SCALE, 3: 30 * 60 * TIMER_SCALE}


@pytest.mark.timeout(HA_SECONDS + 2 * STALLED_REQUEUE_S + 240)
async def test_replicas_killed_in_turns_under_load_lose_and_double_nothing(
    slack: LocalSlack, ha_cluster: Cluster, database_url: str, app_db_url: str
) -> None:
    ledger = load.Ledger()
    deadline = time.monotonic() + HA_SECONDS
    await asyncio.gather(
        ha_cluster.kill_in_turns(KILL_EVERY, deadline, first_after=5.0),
        load.declarer(slack, ledger, deadline, pause=max(4.0, HA_SECONDS / 10)),
        load.commander(slack, ledger, deadline),
        load.approver(slack, ledger, deadline),
        load.pinner(slack, ledger, deadline),
        load.alerter(ha_cluster.front_url + "/alerts/alertmanager", ALERT_TOKEN, ledger, deadline),
    )
    await ha_cluster.wait_all_up()
    await asyncio.sleep(3)  # background work of the last requests, and Slack's last event retries
    figures = Figures(seconds=HA_SECONDS)
    # An escalation whose replica was killed mid-job is run by another once the stalled-job sweep
    # requeues it: wait for every due one (a lost one never runs, and the check below fails).
    await _none_left(database_url, DUE_ESCALATIONS)
    await _resolve_all(slack, database_url)
    # A diagnosis whose replica was killed after the ack is posted by its take-over job, once due:
    # then no job is waiting or running and every alert card is drawn.
    await _none_left(database_url, LEFT_IN_QUEUE)
    from_slack_and_proxy(figures, slack, ha_cluster, ledger)
    await from_store(figures, slack, ledger, database_url, app_db_url)
    await pin_entries(figures, ledger, database_url)
    print(f"\nHA drill, 3 replicas behind HAProxy, {os.getloadavg()[0]:.1f} load:\n{figures.table(ledger)}")
    answered, sent = figures.answered
    assert answered == sent, (
        f"{sent - answered} of {sent} requests got no answer: {ledger.unanswered(slack)};"
        f" HAProxy answered: {ha_cluster.proxy_failures()}; kills: {ha_cluster.kills}"
    )
    _hold(figures, ledger)


def _hold(figures: Figures, ledger: load.Ledger) -> None:
    assert figures.diagnoses_posted == ledger.diagnoses, "an acknowledged diagnosis was never posted"
    assert figures.kills >= 1 and ledger.approvals and ledger.declared and ledger.pinned
    started = {r: n for r, n in figures.runs_per_request.items() if n}
    assert all(n == 1 for n in started.values()), f"an approved action ran more than once: {started}"
    assert not {"approved", "running"} & set(figures.approval_states), figures.approval_states
    assert not figures.unsettled_cards, (
        f"approval cards that never showed the outcome: {figures.unsettled_cards}"
    )
    succeeded = figures.approval_states.get("succeeded", 0)
    assert succeeded <= figures.executions <= len(started), (
        f"{figures.executions} executions for {succeeded} succeeded of {len(started)} started requests"
    )
    assert figures.incidents == len(ledger.declared), "an acknowledged declare was lost or doubled"
    assert set(figures.declared_entries.values()) == {1}, figures.declared_entries
    assert set(figures.pin_entries) == {1}, f"pins on the timeline other than once: {figures.pin_entries}"
    for timers in figures.timers:
        due = {tier for tier, at in P0_TIERS_S.items() if timers.lifetime_s > at + 5}
        assert set(timers.escalations.values()) <= {1}, f"{timers.incident} escalated twice: {timers}"
        assert due <= set(timers.escalations), f"{timers.incident} missed an escalation: {timers}"
        assert timers.reminder_posts <= timers.lifetime_s // P0_REMINDER_S + 1, f"reminded twice: {timers}"
    refused = [a for a in ledger.alerts if a.status != 200]
    assert not refused, f"{len(refused)} of {len(ledger.alerts)} alert notifications not taken: {refused[:5]}"
    assert len(figures.cards_per_group) == len(load.ALERT_GROUPS), figures.cards_per_group
    assert set(figures.cards_per_group.values()) == {1}, (
        f"groups with other than one card: {figures.cards_per_group}"
    )
    assert not figures.jobs_left, f"the job queue did not drain: {figures.jobs_left}"
    assert figures.audit_ok, "the audit chain does not verify"


async def _resolve_all(slack: LocalSlack, database_url: str) -> None:
    """Resolve every incident (which cancels its timers), so the job queue can be seen to drain."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        rows = await (
            await conn.execute("SELECT id, channel_id FROM incidents WHERE status <> 'resolved'")
        ).fetchall()
        for incident, channel in rows:
            if channel is None:
                continue
            await slack.slash("alice", str(channel), "/incident root-cause drill: a replica was killed")
            await _until(conn, "SELECT root_cause IS NOT NULL FROM incidents WHERE id = %s", incident)
            await slack.slash("alice", str(channel), "/incident resolve drill over")
            await _until(conn, "SELECT status = 'resolved' FROM incidents WHERE id = %s", incident)


async def _until(conn: psycopg.AsyncConnection[tuple[object, ...]], sql: str, *args: object) -> None:
    async with asyncio.timeout(20):
        while True:
            row = await (await conn.execute(sql, args)).fetchone()
            if row is not None and row[0]:
                return
            await asyncio.sleep(0.1)


DUE_ESCALATIONS = (
    "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'incident.escalate'"
    " AND status IN ('todo', 'doing') AND scheduled_at <= now()"
)


async def _none_left(database_url: str, count_sql: str) -> None:
    """Wait until `count_sql` counts nothing, or the stalled-job sweep's time has passed."""
    deadline = time.monotonic() + STALLED_REQUEUE_S
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = await (await conn.execute(count_sql)).fetchone()
            if row is not None and row[0] == 0:
                return
            await asyncio.sleep(0.5)

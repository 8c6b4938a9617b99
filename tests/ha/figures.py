"""What the replicas did under kills, counted from the stored state, Slack's side and HAProxy's counters.

Owns the figures the HA test asserts and prints: requests answered, retries needed, actions run per
approved request, cards per alert group, timers fired per incident, jobs left in the queue, and the
audit chain. Each figure is read from where the truth is (PostgreSQL, the target database, the
messages localslack holds), never from what the load believes it did.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from bot.audit import verify as verify_chain
from localslack import LocalSlack
from tests.approvals.helpers import text_of
from tests.ha.cluster import Cluster
from tests.ha.load import Ledger, card_outcome

ESCALATION = re.compile(r"escalating to tier (\d)")
REMINDER = "time for a status update"
DIAGNOSIS = "Execution counter"


@dataclass
class IncidentTimers:
    incident: str
    lifetime_s: float
    escalations: Counter[int]
    reminder_posts: int
    reminder_entries: int


@dataclass
class Figures:
    seconds: float
    kills: int = 0
    restart_s: float = 0.0
    answered: tuple[int, int] = (0, 0)
    diagnoses_posted: int = 0
    slack_retries: int = 0
    proxy_retries: int = 0
    proxy_redispatches: int = 0
    runs_per_request: dict[str, int] = field(default_factory=dict)
    approval_states: dict[str, int] = field(default_factory=dict)
    executions: int = 0
    unsettled_cards: list[str] = field(default_factory=list)
    incidents: int = 0
    declared_entries: dict[str, int] = field(default_factory=dict)
    pin_entries: list[int] = field(default_factory=list)
    timers: list[IncidentTimers] = field(default_factory=list)
    cards_per_group: dict[str, int] = field(default_factory=dict)
    jobs_left: dict[str, int] = field(default_factory=dict)
    audit_ok: bool = False
    audit_events: int = 0

    def table(self, ledger: Ledger) -> str:
        runs = Counter(self.runs_per_request.values())
        escalations = Counter(n for t in self.timers for n in t.escalations.values())
        reminders = sum(t.reminder_posts for t in self.timers), sum(t.reminder_entries for t in self.timers)
        stuck = sum(a.outcome == "stuck" for a in ledger.approvals)
        cards = _counts(dict(Counter(self.cards_per_group.values())))
        rows = [
            ("run / SIGKILLs (back after)", f"{self.seconds:.0f} s / {self.kills} ({self.restart_s:.1f} s)"),
            ("requests answered (commands, clicks, events)", "{} / {}".format(*self.answered)),
            (
                "Slack retries / replayed deliveries",
                f"{self.slack_retries} / {len(ledger.replays)}",
            ),
            (
                "HAProxy: retried on the same / another replica",
                f"{self.proxy_retries} / {self.proxy_redispatches}",
            ),
            ("diagnoses acknowledged / posted", f"{ledger.diagnoses} / {self.diagnoses_posted}"),
            ("approval requests by state", _counts(self.approval_states)),
            ("runs per approved request: requests", _counts(dict(runs))),
            ("executions on the target", str(self.executions)),
            (
                "user flows cut by a kill / cards slow (over 40 s) / never settled",
                f"{len(ledger.interrupted_flows)} / {stuck} / {len(self.unsettled_cards)}",
            ),
            ("incidents declared (acked) / stored", f"{len(ledger.declared)} / {self.incidents}"),
            ("timeline entries per pin: pins", _counts(dict(Counter(self.pin_entries)))),
            ("escalation posts per incident and tier: count", _counts(dict(escalations))),
            ("reminder posts / reminder entries", "{} / {}".format(*reminders)),
            (
                "alert notifications (sent again) / groups / cards per group",
                f"{len(ledger.alerts)} ({sum(a.attempts > 1 for a in ledger.alerts)}) / "
                f"{len(self.cards_per_group)} / {cards or '-'}",
            ),
            ("jobs left todo/doing", _counts(self.jobs_left) or "none"),
            ("audit chain", f"{'verified' if self.audit_ok else 'BROKEN'} ({self.audit_events} events)"),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def _counts(counts: dict[object, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: str(kv[0])))


def from_slack_and_proxy(figures: Figures, slack: LocalSlack, cluster: Cluster, ledger: Ledger) -> None:
    figures.kills = len(cluster.kills)
    if cluster.kills:
        figures.restart_s = sum(k.back_after for k in cluster.kills) / len(cluster.kills)
    figures.answered = ledger.answered(slack)
    figures.diagnoses_posted = sum(
        1
        for m in slack.messages("general")
        if m.user == slack.bot_user_id and DIAGNOSIS in m.text + text_of(m.blocks)
    )
    figures.slack_retries = sum(1 for a in slack.recorder.deliveries if a.retry_num > 0)
    totals = cluster.backend_stats()["BACKEND"]
    figures.proxy_retries = int(totals["wretr"] or 0)
    figures.proxy_redispatches = int(totals["wredis"] or 0)


async def from_store(
    figures: Figures, slack: LocalSlack, ledger: Ledger, database_url: str, app_db_url: str
) -> None:
    figures.unsettled_cards = [a.card.text for a in ledger.approvals if card_outcome(slack, a.card) is None]
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await _approvals(figures, conn)
        await _incidents(figures, conn, slack)
        await _alert_cards(figures, conn, slack)
        rows = await (
            await conn.execute(
                "SELECT status::text, count(*) FROM procrastinate_jobs"
                " WHERE status IN ('todo', 'doing') GROUP BY status"
            )
        ).fetchall()
        figures.jobs_left = {str(s): int(n) for s, n in rows}
        result = await verify_chain(conn)
        figures.audit_ok = result.ok
        row = await (await conn.execute("SELECT count(*) FROM audit_events")).fetchone()
        figures.audit_events = int(row[0]) if row else 0
    async with await psycopg.AsyncConnection.connect(app_db_url) as conn:
        row = await (await conn.execute("SELECT count(*) FROM executions")).fetchone()
        figures.executions = int(row[0]) if row else 0


async def _approvals(figures: Figures, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    by_state = "SELECT state, count(*) FROM approval_requests GROUP BY state"
    states = await (await conn.execute(by_state)).fetchall()
    figures.approval_states = {str(s): int(n) for s, n in states}
    # An action starts only through the compare-and-set to `running`, which is audited once per run.
    runs = await (
        await conn.execute(
            """SELECT r.id, count(a.id) FROM approval_requests r
               LEFT JOIN audit_events a ON a.subject = r.id AND a.action = 'approval.started'
               WHERE r.state IN ('approved', 'running', 'succeeded', 'failed')
               GROUP BY r.id"""
        )
    ).fetchall()
    figures.runs_per_request = {str(r): int(n) for r, n in runs}


async def _incidents(
    figures: Figures, conn: psycopg.AsyncConnection[tuple[object, ...]], slack: LocalSlack
) -> None:
    rows = await (
        await conn.execute(
            """SELECT i.id, i.channel_id, i.declared_at, coalesce(i.resolved_at, now()),
                      count(*) FILTER (WHERE e.kind = 'declared'),
                      count(*) FILTER (WHERE e.kind = 'reminder')
               FROM incidents i LEFT JOIN timeline_events e ON e.incident_id = i.id
               GROUP BY i.id"""
        )
    ).fetchall()
    figures.incidents = len(rows)
    for incident, channel, declared_at, ended_at, declared, reminders in rows:
        figures.declared_entries[str(incident)] = int(declared)
        if not channel:
            continue
        assert isinstance(declared_at, datetime) and isinstance(ended_at, datetime)
        texts = [m.text for m in slack.messages(str(channel))]
        figures.timers.append(
            IncidentTimers(
                str(incident),
                (ended_at - declared_at).total_seconds(),
                Counter(int(m.group(1)) for t in texts if (m := ESCALATION.search(t))),
                sum(REMINDER in t for t in texts),
                int(reminders),
            )
        )


async def _alert_cards(
    figures: Figures, conn: psycopg.AsyncConnection[tuple[object, ...]], slack: LocalSlack
) -> None:
    """Top-level bot messages per alert group whose header names the group's alert (its card)."""
    rows = await (
        await conn.execute("SELECT group_key, channel_id, common_labels->>'alertname' FROM alert_groups")
    ).fetchall()
    for group_key, channel, alertname in rows:
        header = f"· {alertname}"
        figures.cards_per_group[str(group_key)] = (
            sum(
                1
                for m in slack.messages(str(channel))
                if m.user == slack.bot_user_id and header in text_of((m.blocks or [])[:1])
            )
            if channel
            else 0
        )


async def pin_entries(figures: Figures, ledger: Ledger, database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        for channel_id, ts in ledger.pinned:
            row = await (
                await conn.execute(
                    """SELECT count(*) FROM timeline_events e JOIN incidents i ON i.id = e.incident_id
                       WHERE i.channel_id = %s AND e.message_ts = %s""",
                    (channel_id, ts),
                )
            ).fetchone()
            figures.pin_entries.append(int(row[0]) if row else 0)

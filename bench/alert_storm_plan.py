"""The alert storm's script and its judge: which notifications go out when, what state each alert
group ends in, how to read that state back from a card, and whether a run met its targets.

Nothing here touches a network or a clock, so `tests/bench/test_alert_storm.py` checks it fast.

A group holds a pool of 4 to 12 alerts (one per `instance`). Each step of a group changes its state:
a new alert fires, a firing one resolves, a resolved one fires again, or every firing one resolves
at once. As Alertmanager does, each notification carries every alert of its group with its current
status (resolved ones included), so the card's "N firing · M resolved" must equal the counts of the
last notification the group was sent. The rate counts alerts carried: at 1,000 alerts/min a
notification of 8 alerts leaves 0.48 s after the one before it.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

GROUPS_PER_LANE = 10
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
_MARKER = re.compile(r"\[storm g(\d{2})\]")
_STATUS = re.compile(r"\*Status\*\n(firing|resolved)")
_COUNTS = re.compile(r"\*Alerts\*\n(\d+) firing · (\d+) resolved")


@dataclass(frozen=True)
class Lane:
    """One route: its channel, the alertname its groups share and the runbook that diagnoses them."""

    channel: str
    channel_id: str
    alertname: str
    runbook: str
    service: str
    summary: str


# Runbooks whose checks read only operational data, which may be shown in a public channel.
LANES: tuple[Lane, ...] = (
    Lane("alerts-db", "C0STORMDB", "StormDbConnections", "db.connections", "postgres", "Connections high"),
    Lane("alerts-cache", "C0STORMCACHE", "StormCacheHitRate", "cache.stats", "cache", "Cache hit rate low"),
    Lane("alerts-host", "C0STORMHOST", "StormDiskUsage", "host.disk", "node", "Disk filling up"),
    Lane("alerts-health", "C0STORMHEALTH", "StormServiceHealth", "health.services", "api", "Health failing"),
    Lane("alerts-pool", "C0STORMPOOL", "StormPoolUsage", "db.pool", "backend", "Pool nearly exhausted"),
)


@dataclass(frozen=True)
class GroupState:
    """What a card shows of its group: status and alert counts."""

    status: str
    firing: int
    resolved: int

    def __str__(self) -> str:
        return f"{self.status} {self.firing}F/{self.resolved}R"


@dataclass(frozen=True)
class AlertAt:
    """One alert of a group at one step; `fired`/`resolved` are the step indexes of its last change."""

    instance: int
    firing: bool
    fired: int
    resolved: int | None


@dataclass(frozen=True)
class Step:
    """One notification of the script: its group, when it is due (s from the start) and its alerts."""

    index: int
    group: int
    at_s: float
    alerts: tuple[AlertAt, ...]

    @property
    def state(self) -> GroupState:
        firing = sum(1 for a in self.alerts if a.firing)
        return GroupState("firing" if firing else "resolved", firing, len(self.alerts) - firing)


def lane_of(group: int) -> Lane:
    return LANES[group // GROUPS_PER_LANE]


def marker(group: int) -> str:
    """The tag in a group's summary, so its card is found by its text."""
    return f"[storm g{group:02d}]"


def group_of_text(text: str) -> int | None:
    found = _MARKER.search(text)
    return int(found.group(1)) if found else None


def _moves(alerts: dict[int, AlertAt], pool: int) -> list[str]:
    """The changes open to a group, weighted by repetition: growth and single resolves most often."""
    firing = sum(1 for a in alerts.values() if a.firing)
    moves = ["new"] * 3 if len(alerts) < pool else []
    moves += ["resolve"] * 3 if firing else []
    moves += ["refire"] * 2 if firing < len(alerts) else []
    return moves + (["resolve_all"] if firing > 1 else [])


def _advance(rng: random.Random, alerts: dict[int, AlertAt], pool: int, step: int) -> None:
    """One change of a group's state; every change moves its firing/resolved counts."""
    move = rng.choice(_moves(alerts, pool)) if alerts else "open"
    if move in ("open", "new"):
        added = 2 if move == "open" else rng.randint(1, 3)
        for instance in range(len(alerts), min(pool, len(alerts) + added)):
            alerts[instance] = AlertAt(instance, True, step, None)
    elif move == "refire":
        chosen = rng.choice([a for a in alerts.values() if not a.firing])
        alerts[chosen.instance] = AlertAt(chosen.instance, True, step, None)
    else:
        firing = [a for a in alerts.values() if a.firing]
        for alert in firing if move == "resolve_all" else [rng.choice(firing)]:
            alerts[alert.instance] = AlertAt(alert.instance, False, alert.fired, step)


def storm_script(alerts_per_min: float, minutes: float, groups: int, seed: int = 19) -> list[Step]:
    """Steps in send order: every group in a shuffled round, rounds until the alerts carried reach
    `alerts_per_min * minutes`; each step is due once the alerts before it have filled the rate."""
    rng = random.Random(seed)
    pools = [rng.randint(4, 12) for _ in range(groups)]
    state: list[dict[int, AlertAt]] = [{} for _ in range(groups)]
    steps: list[Step] = []
    carried, total, per_s = 0, alerts_per_min * minutes, alerts_per_min / 60
    while carried < total:
        order = list(range(groups))
        rng.shuffle(order)
        for group in order:
            if carried >= total:
                break
            _advance(rng, state[group], pools[group], len(steps))
            alerts = tuple(sorted(state[group].values(), key=lambda a: a.instance))
            steps.append(Step(len(steps), group, carried / per_s, alerts))
            carried += len(alerts)
    return steps


def last_states(steps: list[Step]) -> dict[int, GroupState]:
    """Each group's state after its last step."""
    return {step.group: step.state for step in steps}


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _alert_body(group: int, alert: AlertAt, at: Callable[[int], datetime]) -> dict[str, Any]:
    lane = lane_of(group)
    labels = {
        "alertname": lane.alertname,
        "severity": "warning",
        "service": lane.service,
        "storm_group": f"g{group:02d}",
        "instance": f"node-{alert.instance}:9100",
    }
    canonical = json.dumps(sorted(labels.items())).encode()
    return {
        "status": "firing" if alert.firing else "resolved",
        "labels": labels,
        "annotations": {
            "summary": f"{lane.summary} {marker(group)}",
            "description": f"{lane.alertname} on node-{alert.instance} (alert storm bench).",
        },
        "startsAt": _rfc3339(at(alert.fired)),
        "endsAt": GO_ZERO_TIME if alert.resolved is None else _rfc3339(at(alert.resolved)),
        "generatorURL": f"http://127.0.0.1:9090/graph?g0.expr=storm_{group}",
        "fingerprint": hashlib.sha256(canonical).hexdigest()[:16],
    }


def alertmanager_body(step: Step, steps: list[Step], started: datetime) -> dict[str, Any]:
    """The webhook (version 4) body Alertmanager would POST for `step`, times from `started`."""

    def at(index: int) -> datetime:
        return started + timedelta(seconds=steps[index].at_s)

    alerts = [_alert_body(step.group, alert, at) for alert in step.alerts]
    first = alerts[0]
    common = {k: v for k, v in first["labels"].items() if all(a["labels"][k] == v for a in alerts)}
    group_labels = {"alertname": common["alertname"], "storm_group": common["storm_group"]}
    key = ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels.items()))
    return {
        "receiver": "opsbot",
        "status": step.state.status,
        "alerts": alerts,
        "groupLabels": group_labels,
        "commonLabels": common,
        "commonAnnotations": {"summary": first["annotations"]["summary"]},
        "externalURL": "http://127.0.0.1:9093",
        "version": "4",
        "groupKey": "{}:{" + key + "}",
        "truncatedAlerts": 0,
    }


def card_state(blocks: list[dict[str, Any]] | None) -> GroupState | None:
    """The state an alert card shows (its Status and Alerts fields), or None if it shows none."""
    for block in blocks or []:
        texts = "\n\n".join(str(f.get("text", "")) for f in block.get("fields") or [])
        status, counts = _STATUS.search(texts), _COUNTS.search(texts)
        if status and counts:
            return GroupState(status.group(1), int(counts.group(1)), int(counts.group(2)))
    return None


@dataclass(frozen=True)
class Verdict:
    name: str
    shown: str
    met: bool


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def verdicts(f: dict[str, Any]) -> list[Verdict]:
    """Each target against a run's figures; a figure the run could not produce is NOT met."""
    person, first = f.get("person_reply_p99_ms"), f.get("first_card_p50_ms")
    converge, lost = f.get("all_cards_current_s"), f.get("lost_updates")
    posts, rss = f.get("messages_per_group_max"), f.get("peak_rss_mb")
    return [
        Verdict("person reply p99 < 1 s", _ms(person), person is not None and person < 1000),
        Verdict("alert → first card p50 < 2 s", _ms(first), first is not None and first < 2000),
        Verdict(
            "every card shows the last state within 60 s",
            "never" if converge is None else f"{converge:.1f} s",
            converge is not None and converge <= 60,
        ),
        Verdict("0 lost updates", str(lost), lost == 0),
        Verdict("messages ≤ 3 per group", str(posts), posts is not None and posts <= 3),
        Verdict("bot RSS < 300 MB", "-" if rss is None else f"{rss:.0f} MB", rss is not None and rss < 300),
    ]

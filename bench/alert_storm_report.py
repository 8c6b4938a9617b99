"""The alert storm's figures from what was observed, the printed tables and the met / NOT met lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.alert_storm_drive import CardWatch, Notifier, Person
from bench.alert_storm_plan import GroupState, Step, verdicts
from bench.common import print_table
from bench.loadgen import percentile
from localslack.limits import CHANNEL_PACE, TokenBucket


@dataclass
class Observed:
    steps: list[Step]
    finals: dict[int, GroupState]  # the script's last state per group (what would be sent unhindered)
    notifier: Notifier
    watch: CardWatch
    person: Person
    calls: list[dict[str, Any]]
    peak_rss_mb: float
    cpu_pct: float
    wall_s: float
    alive: bool
    log_tail: str
    limits: str = ""


def _dist(seconds: list[float]) -> dict[str, float | None]:
    ordered = sorted(seconds)
    if not ordered:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "n": len(ordered),
        "p50_ms": percentile(ordered, 50) * 1000,
        "p99_ms": percentile(ordered, 99) * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def paced_earliest(arrivals: list[float]) -> list[float]:
    """When the cards of one channel could appear at the earliest under Slack's pace alone
    (`CHANNEL_PACE`: a burst of three, then a post a second), given when each group's first
    notification was sent; in order, earliest first."""
    earliest: list[float] = []
    bucket: TokenBucket | None = None
    for sent in sorted(arrivals):
        bucket = bucket or TokenBucket(CHANNEL_PACE, sent)
        at = max([sent, *earliest[-1:]])
        at += bucket.wait(at)
        bucket.take(at)
        earliest.append(at)
    return earliest


def beyond_pace(o: Observed) -> list[float]:
    """For each channel's k-th card, how much later it appeared than Slack's pace alone would have
    allowed the k-th: the part of the alert → card time that was ours, not Slack's."""
    by_channel: dict[str, list[tuple[float, float]]] = {}
    for group, card in o.watch.cards.items():
        if group in o.notifier.first_sent:
            by_channel.setdefault(card.channel, []).append((o.notifier.first_sent[group], card.seen))
    delays: list[float] = []
    for pairs in by_channel.values():
        earliest = paced_earliest([sent for sent, _ in pairs])
        seen = sorted(seen for _, seen in pairs)
        delays.extend(max(0.0, s - e) for s, e in zip(seen, earliest, strict=True))
    return delays


def _cards(o: Observed) -> dict[str, Any]:
    """First-card latency, when each card came to show its last accepted state, lost updates."""
    first, current, lost, last_sent = [], [], [], 0.0
    for group, sent in sorted(o.notifier.accepted.items()):
        card = o.watch.cards.get(group)
        final, last_sent = sent[-1], max(last_sent, sent[-1].at)
        if card is not None:
            first.append(card.seen - o.notifier.first_sent[group])
        shown_at, shown = card.history[-1] if card and card.history else (0.0, None)
        if shown != final.state:
            lost.append({"group": group, "sent": str(final.state), "shown": str(shown)})
        else:
            current.append((group, shown_at, max(0.0, shown_at - final.at)))
    all_current = max((at for _, at, _ in current), default=last_sent) - last_sent
    return {
        "first_card": _dist(first),
        "first_card_beyond_pace": _dist(beyond_pace(o)),
        "cards_found": len(o.watch.cards),
        "card_current_after_own_last": _dist([delay for _, _, delay in current]),
        "all_cards_current_s": None if lost else max(0.0, all_current),
        "lost_updates": len(lost),
        "lost": lost,
        "script_differs_from_accepted": sum(
            1 for g, sent in o.notifier.accepted.items() if sent[-1].state != o.finals.get(g)
        ),
    }


def _notifications(o: Observed) -> dict[str, Any]:
    n = o.notifier
    accepted = [s for sent in n.accepted.values() for s in sent]
    minutes = max(1e-9, (n.last_due - min(n.first_sent.values(), default=0.0)) / 60)
    return {
        "scheduled": len(o.steps),
        "accepted": len(accepted),
        "coalesced": n.coalesced,
        "retried": n.retried,
        "statuses": dict(n.statuses),
        "alerts_accepted_per_min": sum(s.alerts for s in accepted) / minutes,
        "webhook_answer": _dist(n.latencies),
    }


def _person(p: Person) -> dict[str, Any]:
    db = [s.completion_s for s in p.db if s.completion_s is not None]
    clicks = [a.click_s for a in p.approvals if a.click_s is not None]
    requests = [a.request_s for a in p.approvals if a.request_s is not None]
    return {
        "reply": _dist(db + clicks),
        "db_connections": {**_dist(db), "sent": len(p.db), "errors": sum(1 for s in p.db if s.error)},
        "approve_click": {**_dist(clicks), "tried": len(p.approvals)},
        "approval_request": _dist(requests),
        "unanswered": len(p.db) - len(db) + len(p.approvals) - len(clicks),
    }


def figures_of(o: Observed) -> dict[str, Any]:
    cards, person = _cards(o), _person(o.person)
    posts = [o.watch.messages_of(g) for g in o.watch.cards]
    figures: dict[str, Any] = {
        "rate_limits": o.limits,
        "notifications": _notifications(o),
        "cards": cards,
        "person": person,
        "web_api": o.calls,
        "rate_limited_total": sum(row["rate_limited"] for row in o.calls),
        "messages_total": sum(posts),
        "messages_per_group_max": max(posts, default=None),
        "bot": {"peak_rss_mb": o.peak_rss_mb, "cpu_pct": o.cpu_pct, "alive": o.alive},
        "wall_s": o.wall_s,
    }
    summary = {
        "person_reply_p99_ms": person["reply"]["p99_ms"],
        "first_card_p50_ms": cards["first_card"]["p50_ms"],
        "all_cards_current_s": cards["all_cards_current_s"],
        "lost_updates": cards["lost_updates"],
        "messages_per_group_max": figures["messages_per_group_max"],
        "peak_rss_mb": o.peak_rss_mb,
    }
    figures["targets"] = [v.__dict__ for v in verdicts(summary)]
    return figures


def _ms(d: dict[str, Any]) -> str:
    cells = [d.get(k) for k in ("p50_ms", "p99_ms", "max_ms")]
    return "/".join("-" if v is None else f"{v:.0f}" for v in cells) + f" ms (n={d['n']})"


def print_report(f: dict[str, Any]) -> None:
    n, c, p, bot = f["notifications"], f["cards"], f["person"], f["bot"]
    rows = [
        ["notifications scheduled / accepted", f"{n['scheduled']} / {n['accepted']}"],
        ["coalesced / retried / answers", f"{n['coalesced']} / {n['retried']} / {n['statuses']}"],
        ["alerts accepted per min", f"{n['alerts_accepted_per_min']:.0f}"],
        ["webhook answer p50/p99/max", _ms(n["webhook_answer"])],
        ["alert → first card p50/p99/max", _ms(c["first_card"])],
        ["  of which beyond Slack's pace (k-th card of a channel)", _ms(c["first_card_beyond_pace"])],
        ["card current after its last notification", _ms(c["card_current_after_own_last"])],
        ["all cards current after the last notification", str(c["all_cards_current_s"])],
        ["lost updates", str(c["lost_updates"])],
        ["person reply p50/p99/max", _ms(p["reply"])],
        ["  /db connections", _ms(p["db_connections"])],
        ["  approve click → card redrawn", _ms(p["approve_click"])],
        ["  approval request → card (not a target)", _ms(p["approval_request"])],
        ["  unanswered", str(p["unanswered"])],
        ["429s received", str(f["rate_limited_total"])],
        ["messages per group max / total", f"{f['messages_per_group_max']} / {f['messages_total']}"],
        ["bot peak RSS / CPU", f"{bot['peak_rss_mb']:.0f} MB / {bot['cpu_pct']:.0f} %"],
    ]
    print_table(f"Alert storm ({f['rate_limits']})", ["measure", "value"], rows)
    calls = [
        [
            r["method"],
            r["calls"],
            r.get("alert_channels", "-"),
            r["rate_limited"],
            r["failed"],
            r["budget_per_min"] or "-",
            r["peak_per_min"],
        ]
        for r in f["web_api"]
    ]
    print_table(
        "Web API calls by the bot during the storm",
        ["method", "calls", "to alert channels", "429", "other failures", "budget/min", "peak/min"],
        calls,
    )
    m = f["machine"]
    print(f"\nload average at start {m['load_average_at_start'][0]:.2f} on {m['cpus']} CPUs")
    for v in f["targets"]:
        print(f"{'met' if v['met'] else 'NOT met':<8} {v['name']}: {v['shown']}")

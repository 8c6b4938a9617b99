"""The alert storm's script and judge (bench/alert_storm_plan.py): it sends the rate it claims, every
notification is one the bot's own Alertmanager parser accepts with the state the script says, a card
drawn by the bot's own renderer is read back as the state it shows, and a missing figure is NOT met."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from bench.alert_storm_plan import (
    GroupState,
    alertmanager_body,
    card_state,
    lane_of,
    last_states,
    storm_script,
    verdicts,
)
from bench.alert_storm_report import paced_earliest
from bot.alerts.payloads import parse_notification
from bot.render import alert as render
from tests.alerts.test_alert_cards import group

STARTED = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)


def test_the_script_carries_the_rate_it_claims_across_every_group() -> None:
    steps = storm_script(alerts_per_min=1000, minutes=2, groups=50)
    carried = sum(len(s.alerts) for s in steps)
    assert 2000 <= carried < 2000 + 12, "stops once the alerts carried reach rate × minutes"
    assert [s.at_s for s in steps] == sorted(s.at_s for s in steps)
    assert steps[-1].at_s < 120
    # At 1,000 alerts/min a step is due when the alerts before it have filled the rate.
    before = sum(len(s.alerts) for s in steps[:100])
    assert steps[100].at_s == pytest.approx(before * 60 / 1000)
    assert set(Counter(s.group for s in steps)) == set(range(50))
    assert {lane_of(g).channel for g in range(50)} == {
        "alerts-db",
        "alerts-cache",
        "alerts-host",
        "alerts-health",
        "alerts-pool",
    }


def test_every_step_changes_what_its_card_must_show() -> None:
    previous: dict[int, GroupState] = {}
    for step in storm_script(alerts_per_min=1000, minutes=1, groups=50):
        assert step.state != previous.get(step.group), f"step {step.index} repeats its group's state"
        previous[step.group] = step.state
    assert previous == last_states(storm_script(alerts_per_min=1000, minutes=1, groups=50))


def test_each_notification_parses_as_alertmanager_sends_it_with_the_scripts_state() -> None:
    steps = storm_script(alerts_per_min=1000, minutes=1, groups=50)
    for step in steps[::37]:
        body = alertmanager_body(step, steps, STARTED)
        notification = parse_notification("alertmanager", json.dumps(body))
        firing = sum(1 for a in notification.alerts if a.status == "firing")
        assert (notification.status, firing, len(notification.alerts) - firing) == (
            step.state.status,
            step.state.firing,
            step.state.resolved,
        )
        same_group = alertmanager_body(next(s for s in steps if s.group == step.group), steps, STARTED)
        assert body["groupKey"] == same_group["groupKey"], "one group, one key: one card"


@pytest.mark.parametrize(("status", "firing", "resolved"), [("firing", 3, 2), ("resolved", 0, 7)])
def test_a_card_the_bot_draws_is_read_back_as_the_state_it_shows(
    status: str, firing: int, resolved: int
) -> None:
    blocks: list[dict[str, Any]] = render.card(
        render.AlertCard(group(status=status), firing=firing, resolved=resolved, silence_offered=False)
    )
    assert card_state(blocks) == GroupState(status, firing, resolved)
    assert card_state([{"type": "section", "text": {"type": "mrkdwn", "text": "no fields"}}]) is None


GOOD = {
    "person_reply_p99_ms": 420.0,
    "first_card_p50_ms": 1500.0,
    "all_cards_current_s": 35.0,
    "lost_updates": 0,
    "messages_per_group_max": 3,
    "peak_rss_mb": 180.0,
}


def test_a_run_within_every_target_meets_them_all() -> None:
    assert all(v.met for v in verdicts(GOOD))


@pytest.mark.parametrize(
    ("figure", "value"),
    [
        ("person_reply_p99_ms", 1000.0),
        ("first_card_p50_ms", 2400.0),
        ("all_cards_current_s", 61.0),
        ("all_cards_current_s", None),
        ("lost_updates", 1),
        ("messages_per_group_max", 4),
        ("peak_rss_mb", 300.0),
        ("person_reply_p99_ms", None),
    ],
)
def test_a_figure_over_its_target_or_missing_is_not_met(figure: str, value: float | None) -> None:
    judged = verdicts({**GOOD, figure: value})
    assert [v.met for v in judged].count(False) == 1


@pytest.mark.parametrize(
    ("arrivals", "earliest"),
    [
        ([0.0] * 5, [0.0, 0.0, 0.0, 1.0, 2.0]),
        ([4.0, 0.0, 2.0], [0.0, 2.0, 4.0]),
        ([0.0] * 4 + [10.0] * 4, [0.0, 0.0, 0.0, 1.0, 10.0, 10.0, 10.0, 11.0]),
    ],
    ids=["five-at-once", "spread-out", "a-second-burst-after-a-lull"],
)
def test_slacks_pace_alone_lets_a_burst_of_three_then_a_post_a_second(
    arrivals: list[float], earliest: list[float]
) -> None:
    assert paced_earliest(arrivals) == pytest.approx(earliest)

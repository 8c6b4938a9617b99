"""The draft built straight from facts: what an empty record leaves to fill, and who owns what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.approvals.store import ApprovalRecord
from bot.incidents.store import Incident, TimelineEvent
from bot.postmortem.builder import TO_FILL, build
from bot.postmortem.facts import Edits, Message, ReviewFacts
from bot.postmortem.render import draft_edits, load_template, render_markdown
from bot.render.incident import elapsed

DECLARED = datetime(2024, 5, 4, 3, 0, tzinfo=UTC)


def incident(**changes: Any) -> Incident:
    fields: dict[str, Any] = {
        "id": "INC-7",
        "title": "checkout is down",
        "severity": "p1",
        "status": "open",
        "service": None,
        "security_sensitive": False,
        "channel_id": None,
        "channel_name": None,
        "card_ts": None,
        "commander": None,
        "comms_lead": None,
        "scribe": None,
        "declared_by": "U0ALICE",
        "declared_at": DECLARED,
        "resolved_by": None,
        "resolved_at": None,
        "summary": None,
        "root_cause": None,
        "last_update": None,
        "last_update_at": None,
    }
    return Incident(**{**fields, **changes})


def approval(**changes: Any) -> ApprovalRecord:
    fields: dict[str, Any] = {
        "id": "A-1",
        "runbook_id": "db",
        "runbook_version": 1,
        "action_id": "kill_idle",
        "target": "app_db",
        "risk": "low",
        "params": {},
        "preview": None,
        "preview_digest": "",
        "binding_hash": "",
        "reason": "pool full",
        "requester": "U0BOB",
        "channel": "C1",
        "thread_ts": None,
        "message_ts": None,
        "state": "succeeded",
        "required_approvals": 1,
        "approvers": ["U0ALICE"],
        "decided_by": None,
        "created_at": DECLARED,
        "expires_at": DECLARED + timedelta(hours=1),
        "decided_at": None,
        "started_at": None,
        "finished_at": None,
        "result": None,
        "before_values": None,
        "after_values": None,
        "note": None,
    }
    return ApprovalRecord.model_validate({**fields, **changes})


def facts(**changes: Any) -> ReviewFacts:
    fields: dict[str, Any] = {
        "incident": incident(),
        "timeline": [],
        "messages": [],
        "diagnoses": [],
        "approvals": [],
        "users": {"U0ALICE": "alice", "U0BOB": "bob"},
        "generated_at": DECLARED,
    }
    return ReviewFacts(**{**fields, **changes})


def test_an_open_incident_with_nothing_recorded_says_what_to_fill() -> None:
    draft = build(facts())
    assert draft.summary == (
        'P1 incident INC-7, "checkout is down", declared by @alice at 2024-05-04 03:00 UTC, '
        "still open when this draft was made."
    )
    assert draft.impact == [
        f"- Duration: {TO_FILL} still open",
        f"- Users affected: {TO_FILL} not recorded",
        f"- Services impacted: {TO_FILL} no service was recorded",
    ]
    assert draft.root_cause.startswith(f"{TO_FILL} no root cause was recorded")
    assert draft.timeline[:2] == ["- 03:00: Incident detected", f"- {TO_FILL} On-call paged (no paged event)"]
    assert draft.timeline[-1] == ""
    assert draft.resolution == f"{TO_FILL} the incident has no resolution summary yet."
    assert draft.follow_ups == ["- [ ] Update runbook", "- [ ] Add monitoring alert"]
    assert draft.checked == [f"- {TO_FILL} no diagnosis was run from Slack during this incident."]
    assert draft.actions == ["- No approved actions were requested during this incident."]
    assert draft.updates == ["- No status updates were posted."]
    assert draft.missing == [
        "users affected",
        "on-call paged",
        "root cause identified",
        "mitigation applied",
        "service restored",
        "root cause",
    ]


def test_follow_ups_are_owned_by_the_mention_after_the_marker_else_the_author_and_actions_show_changes() -> (
    None
):
    at = DECLARED + timedelta(minutes=5)
    record = approval(
        created_at=at,
        before_values={"idle": {"title": "Idle connections", "value": 90}},
        after_values={"idle": {"title": "Idle connections", "value": 3}, "new": {"value": 1}},
    )
    draft = build(
        facts(
            messages=[
                Message(at=at, user="U0BOB", text="TODO: @carol add an alert\nAction: rotate the key @dave"),
                Message(at=at, user="U0ALICE", text="check the pool size", reactions=["memo"]),
            ],
            approvals=[record],
        )
    )
    assert draft.follow_ups[:3] == [
        "- [ ] @carol add an alert — owner: @carol (from 03:05)",
        "- [ ] rotate the key @dave — owner: @bob (from 03:05)",
        "- [ ] check the pool size — owner: @alice (from 03:05)",
    ]
    assert draft.actions == [
        '- 03:05 A-1 `kill_idle` on `app_db` (low): requested by @bob — "pool full"; approved by @alice; '
        "outcome: **succeeded**; before → after: Idle connections 90 → 3, new ? → 1"
    ]
    assert draft.resolution.endswith("Actions that ran: kill_idle on app_db (A-1)")


def event(kind: str, text: str, minutes: int, actor: str | None = "U0ALICE", **changes: Any) -> TimelineEvent:
    fields: dict[str, Any] = {
        "id": minutes,
        "incident_id": "INC-7",
        "at": DECLARED + timedelta(minutes=minutes),
        "kind": kind,
        "actor": actor,
        "text": text,
        "message_ts": None,
        "source_key": f"{kind}:{minutes}",
        "details": {},
    }
    return TimelineEvent(**{**fields, **changes})


def test_a_follow_up_in_the_middle_of_a_message_is_found_with_the_owner_named_right_after_it() -> None:
    at = DECLARED + timedelta(minutes=7)
    draft = build(
        facts(
            messages=[
                Message(
                    at=at,
                    user="U0ALICE",
                    text="pool is back to normal. TODO: @bob add an alert on pool usage",
                ),
                Message(at=at, user="U0BOB", text="rolled back; action: pin the release, ask @carol"),
                Message(at=at, user="U0ALICE", text="nothing to do here, todos are for later"),
            ]
        )
    )
    assert draft.follow_ups[:2] == [
        "- [ ] @bob add an alert on pool usage — owner: @bob (from 03:07)",
        "- [ ] pin the release, ask @carol — owner: @bob (from 03:07)",
    ]
    assert len(draft.follow_ups) == 4, "a word like 'todos' is not a marker"


def test_mitigation_is_the_first_action_that_improved_not_the_one_that_changed_nothing() -> None:
    unchanged = approval(
        id="A-1",
        runbook_id="cache",
        created_at=DECLARED + timedelta(minutes=5),
        finished_at=DECLARED + timedelta(minutes=6),
        before_values={"hit": {"title": "Hit rate", "value": 20.0, "status": "crit"}},
        after_values={"hit": {"title": "Hit rate", "value": 20.0, "status": "crit"}},
    )
    worse_then_better = approval(
        id="A-2",
        runbook_id="db",
        created_at=DECLARED + timedelta(minutes=8),
        finished_at=DECLARED + timedelta(minutes=9),
        # Still red after, but the pool usage went down, and its runbook says lower is better.
        before_values={"pool": {"title": "Pool usage", "value": 98, "status": "crit"}},
        after_values={"pool": {"title": "Pool usage", "value": 91, "status": "crit"}},
    )
    rising = approval(
        id="A-3",
        runbook_id="db",
        created_at=DECLARED + timedelta(minutes=2),
        finished_at=DECLARED + timedelta(minutes=3),
        before_values={"pool": {"title": "Pool usage", "value": 80, "status": "crit"}},
        after_values={"pool": {"title": "Pool usage", "value": 85, "status": "crit"}},
    )
    better = {"cache/hit": "higher", "db/pool": "lower"}
    draft = build(facts(approvals=[rising, unchanged, worse_then_better], better=better))
    assert "- 03:09: Mitigation applied" in draft.timeline
    assert "mitigation applied" not in draft.missing

    nothing = build(facts(approvals=[rising, unchanged], better=better))
    assert f"- {TO_FILL} Mitigation applied (no improving action event)" in nothing.timeline

    status_only = approval(
        before_values={"q": {"title": "Queue", "value": "?", "status": "crit"}},
        after_values={"q": {"title": "Queue", "value": "?", "status": "ok"}},
        finished_at=DECLARED + timedelta(minutes=4),
    )
    assert "- 03:04: Mitigation applied" in build(facts(approvals=[status_only])).timeline

    marked = Message(
        at=DECLARED + timedelta(minutes=1), user="U0BOB", text="failed over", reactions=["adhesive_bandage"]
    )
    assert "- 03:01: Mitigation applied" in build(facts(approvals=[unchanged], messages=[marked])).timeline


def test_the_review_duration_is_the_resolve_message_duration() -> None:
    resolved = DECLARED + timedelta(hours=1, minutes=5, seconds=50)
    draft = build(facts(incident=incident(status="resolved", resolved_at=resolved, summary="fixed")))
    lasted = elapsed(DECLARED, resolved)
    assert lasted == "1h 05m"
    assert f"- Duration: {lasted}" in draft.impact
    assert f"resolved at 04:05 UTC after {lasted}." in draft.summary


def test_the_root_cause_is_never_the_resolution_summary() -> None:
    resolved = incident(status="resolved", resolved_at=DECLARED, summary="restarted the pool")
    # The resolve form used to store its one text as both.
    same = build(facts(incident=resolved.model_copy(update={"root_cause": "restarted the pool"})))
    assert same.root_cause.startswith(f"{TO_FILL} no root cause was recorded")
    assert "restarted the pool" not in same.root_cause
    assert build(facts(incident=resolved)).root_cause.startswith(TO_FILL)
    recorded = build(facts(incident=resolved.model_copy(update={"root_cause": "leaked connections"})))
    assert recorded.root_cause == "leaked connections"


def test_the_summary_says_how_the_severity_changed_when_and_by_whom() -> None:
    timeline = [
        event("declared", "Declared P1: checkout is down", 0),
        event("severity", "Severity P1 → P0", 12, actor="U0ALICE"),
        event("severity", "Severity P0 → P1", 40, actor="U0BOB"),
    ]
    draft = build(facts(timeline=timeline))
    assert draft.summary.endswith("Severity: P1 → P0 at 03:12 by @alice; P0 → P1 at 03:40 by @bob.")
    assert "still open when this draft was made. Severity: P1 → P0" in draft.summary


def test_the_edit_form_starts_from_what_the_latest_draft_says() -> None:
    draft = build(
        facts(
            incident=incident(root_cause="leaked connections"),
            edits=Edits(users_affected="about 1,200 shoppers"),
        )
    )
    markdown = render_markdown(draft, load_template(None))
    assert draft_edits(markdown) == Edits(
        summary=draft.summary, root_cause="leaked connections", users_affected="about 1,200 shoppers"
    )
    assert draft_edits(render_markdown(build(facts()), load_template(None))).root_cause is None


def test_a_root_cause_changed_later_is_timed_when_the_standing_text_was_recorded() -> None:
    timeline = [
        event("root_cause", "Root cause: a bad deploy", 5),
        event("root_cause", "Root cause: leaked connections", 20),
    ]
    draft = build(facts(incident=incident(root_cause="leaked connections"), timeline=timeline))
    identified = next(m for m in draft.milestones if m.name == "Root cause identified")
    assert draft.root_cause == "leaked connections"
    assert identified.at == DECLARED + timedelta(minutes=20)

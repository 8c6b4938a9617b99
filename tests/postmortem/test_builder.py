"""The draft built straight from facts: what an empty record leaves to fill, and who owns what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.approvals.store import ApprovalRecord
from bot.incidents.store import Incident
from bot.postmortem.builder import TO_FILL, build
from bot.postmortem.facts import Message, ReviewFacts

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


def test_follow_ups_are_owned_by_their_mention_or_their_author_and_actions_show_what_changed() -> None:
    at = DECLARED + timedelta(minutes=5)
    record = approval(
        created_at=at,
        before_values={"idle": {"title": "Idle connections", "value": 90}},
        after_values={"idle": {"title": "Idle connections", "value": 3}, "new": {"value": 1}},
    )
    draft = build(
        facts(
            messages=[
                Message(at=at, user="U0BOB", text="TODO: add an alert @carol\nAction: rotate the key"),
                Message(at=at, user="U0ALICE", text="check the pool size", reactions=["memo"]),
            ],
            approvals=[record],
        )
    )
    assert draft.follow_ups[:3] == [
        "- [ ] add an alert @carol — owner: @carol (from 03:05)",
        "- [ ] rotate the key — owner: @bob (from 03:05)",
        "- [ ] check the pool size — owner: @alice (from 03:05)",
    ]
    assert draft.actions == [
        '- 03:05 A-1 `kill_idle` on `app_db` (low): requested by @bob — "pool full"; approved by @alice; '
        "outcome: **succeeded**; before → after: Idle connections 90 → 3, new ? → 1"
    ]
    assert draft.resolution.endswith("Actions that ran: kill_idle on app_db (A-1)")

"""Builds the review draft from the facts, in the seed's template (seed 000, Post-Incident Review).

Nothing is invented: every line comes from the record, the timeline, the thread, the diagnoses or the
approvals, and a section the data cannot fill says "To fill" with what is missing.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from bot.approvals.store import ApprovalRecord
from bot.incidents.duration import elapsed
from bot.postmortem.facts import Message, ReviewFacts
from bot.runbooks.model import STATUS_WORD

TO_FILL = "_To fill:_"
# `TODO:` / `Action:` anywhere in a message (not only at a line start); the item runs to the line end.
_ACTION_LINE = re.compile(r"(?<![\w-])(TODO|Action)\s*:\s*(.+)$", re.I | re.M)
# The item's owner is the person mentioned right after the marker ("TODO: @bob add an alert").
_LEADING_MENTION = re.compile(r"@([A-Za-z0-9._-]+)")
_SEVERITY_CHANGE = re.compile(r"Severity\s+(\S+)\s*→\s*(\S+)")
_STATUS_RANK = {"ok": 0, "warn": 1, "crit": 2}
_ROOT_CAUSE_LINE = re.compile(r"^\s*root cause\s*:\s*(.+)$", re.I | re.M)
_SLACK_USER = re.compile(r"<@([UW][A-Z0-9]{2,20})(?:\|[^>]*)?>")

_LESSONS = (
    "1. What went well?",
    "2. What went wrong, or was harder than it should have been?",
    "3. Where did we get lucky?",
)


class Milestone(BaseModel):
    name: str
    at: datetime | None
    source: str


class ReviewDraft(BaseModel):
    title: str
    summary: str
    impact: list[str]
    root_cause: str
    timeline: list[str]
    milestones: list[Milestone]
    resolution: str
    follow_ups: list[str]
    lessons: list[str]
    checked: list[str]
    actions: list[str]
    updates: list[str]
    missing: list[str]


def hhmm(at: datetime | None) -> str:
    return f"{at:%H:%M}" if at else "HH:MM"


def _name(facts: ReviewFacts, user: str | None) -> str:
    if not user:
        return "someone"
    return "@" + facts.users.get(user, user)


def _names(facts: ReviewFacts, text: str) -> str:
    """Slack user mentions in timeline text as @names."""
    return _SLACK_USER.sub(lambda m: "@" + facts.users.get(m.group(1), m.group(1)), text)


def duration(facts: ReviewFacts) -> str | None:
    """How long it lasted, exactly as the resolve message says it (None while still open)."""
    incident = facts.incident
    if incident.resolved_at is None:
        return None
    return elapsed(incident.declared_at, incident.resolved_at)


def build(facts: ReviewFacts) -> ReviewDraft:
    root_cause, root_cause_at = _root_cause(facts)
    milestones = _milestones(facts, root_cause_at)
    return ReviewDraft(
        title=_title(facts),
        summary=_summary(facts),
        impact=_impact(facts),
        root_cause=root_cause or _root_cause_to_fill(facts),
        timeline=_timeline(facts, milestones),
        milestones=milestones,
        resolution=_resolution(facts),
        follow_ups=_follow_ups(facts),
        lessons=list(_LESSONS),
        checked=_checked(facts),
        actions=_actions(facts),
        updates=_updates(facts),
        missing=_missing(facts, milestones, root_cause),
    )


def _title(facts: ReviewFacts) -> str:
    incident = facts.incident
    return f"Incident Review - {incident.declared_at:%Y-%m-%d %H:%M} — {incident.id}: {incident.title}"


def _summary(facts: ReviewFacts) -> str:
    if facts.edits.summary:
        return facts.edits.summary
    incident = facts.incident
    lasted = duration(facts)
    state = (
        f"resolved at {hhmm(incident.resolved_at)} UTC after {lasted}"
        if lasted is not None
        else "still open when this draft was made"
    )
    summary = (
        f'{incident.severity.upper()} incident {incident.id}, "{incident.title}", declared by '
        f"{_name(facts, incident.declared_by)} at {incident.declared_at:%Y-%m-%d %H:%M} UTC, {state}."
    )
    history = _severity_history(facts)
    if history:
        summary += f" Severity: {history}."
    if incident.summary:
        summary += f" Resolution summary: {incident.summary}"
    return summary


def _severity_history(facts: ReviewFacts) -> str:
    """'P1 → P0 at 10:42 by @alice; P0 → P1 at 11:05 by @bob', from the timeline's severity events."""
    changes = []
    for event in facts.timeline:
        match = _SEVERITY_CHANGE.search(event.text) if event.kind == "severity" else None
        if match:
            changes.append(
                f"{match.group(1)} → {match.group(2)} at {hhmm(event.at)} by {_name(facts, event.actor)}"
            )
    return "; ".join(changes)


def _impact(facts: ReviewFacts) -> list[str]:
    lasted = duration(facts)
    users_affected = facts.edits.users_affected
    service = facts.incident.service
    impact = [
        f"- Duration: {lasted}" if lasted is not None else f"- Duration: {TO_FILL} still open",
        f"- Users affected: {users_affected}"
        if users_affected
        else f"- Users affected: {TO_FILL} not recorded",
        f"- Services impacted: {service}"
        if service
        else f"- Services impacted: {TO_FILL} no service was recorded",
    ]
    if facts.edits.impact:
        impact.append(f"- {facts.edits.impact}")
    return impact


def _root_cause(facts: ReviewFacts) -> tuple[str | None, datetime | None]:
    """The first recorded root cause; the resolution summary is never one (a resolve form that
    stored its one text as both must not make "what fixed it" read as "why it broke")."""
    summary = (facts.incident.summary or "").strip()
    for text, at in _root_cause_candidates(facts):
        if text.strip() and text.strip() != summary:
            return text, at
    return None, None


def _root_cause_candidates(facts: ReviewFacts) -> list[tuple[str, datetime | None]]:
    """A person's edit, then the incident's recorded root cause, then a :dart:'d or `Root cause:` message."""
    # The root cause as recorded now: when it was changed, the time is that of the text now standing.
    recorded = [e for e in facts.timeline if e.kind == "root_cause"]
    current = facts.incident.root_cause or ""
    event = next(
        (e for e in reversed(recorded) if e.text.endswith(current)), recorded[-1] if recorded else None
    )
    candidates: list[tuple[str, datetime | None]] = []
    if facts.edits.root_cause:
        candidates.append((facts.edits.root_cause, None))
    if facts.incident.root_cause:
        candidates.append((facts.incident.root_cause, event.at if event else None))
    for message in facts.messages:
        if facts.root_cause_reaction in message.reactions:
            candidates.append((message.text, message.at))
        match = _ROOT_CAUSE_LINE.search(message.text)
        if match:
            candidates.append((match.group(1).strip(), message.at))
    return candidates


def _root_cause_to_fill(facts: ReviewFacts) -> str:
    return (
        f"{TO_FILL} no root cause was recorded (`/incident root-cause`, or mark the "
        f"message with :{facts.root_cause_reaction}:)."
    )


def _milestones(facts: ReviewFacts, root_cause_at: datetime | None) -> list[Milestone]:
    incident = facts.incident
    paged = next((e for e in facts.timeline if e.kind == "paged"), None)
    # An alert that declared (or was declared from) says when the problem began: its startsAt.
    detected = min((e.at for e in facts.timeline if e.kind == "detected"), default=incident.declared_at)
    return [
        Milestone(name="Incident detected", at=min(detected, incident.declared_at), source="declared"),
        Milestone(name="On-call paged", at=paged.at if paged else None, source="paged"),
        Milestone(name="Root cause identified", at=root_cause_at, source="root cause"),
        Milestone(name="Mitigation applied", at=_mitigated_at(facts), source="improving action"),
        Milestone(name="Service restored", at=incident.resolved_at, source="resolved"),
    ]


def _timeline(facts: ReviewFacts, milestones: list[Milestone]) -> list[str]:
    """The milestones (or what is missing for each), a blank line, then every timeline event."""
    marks = [
        f"- {hhmm(m.at)}: {m.name}" if m.at else f"- {TO_FILL} {m.name} (no {m.source} event)"
        for m in milestones
    ]
    events = [
        f"- {hhmm(e.at)}: {_names(facts, e.text)}" + (f" ({_name(facts, e.actor)})" if e.actor else "")
        for e in facts.timeline
    ]
    return [*marks, "", *events]


def _mitigated_at(facts: ReviewFacts) -> datetime | None:
    """When the first approved action that measurably improved things finished, or the first
    message a person marked as the mitigation, whichever came first. An action whose checks read
    the same before and after (or were not measured) mitigated nothing we can show."""
    times = [
        record.finished_at or record.decided_at or record.created_at
        for record in facts.approvals
        if record.state == "succeeded" and _improved(facts, record)
    ]
    times += [m.at for m in facts.messages if facts.mitigation_reaction in m.reactions]
    return min(times, default=None)


def _improved(facts: ReviewFacts, record: ApprovalRecord) -> bool:
    """Some verified check moved the good way: its status got better, or its value moved in the
    direction its runbook's thresholds call better (`>` rules: lower is better; `<`: higher)."""
    before, after = record.before_values or {}, record.after_values or {}
    for check_id in before.keys() & after.keys():
        b, a = before[check_id] or {}, after[check_id] or {}
        b_rank, a_rank = _STATUS_RANK.get(b.get("status", "")), _STATUS_RANK.get(a.get("status", ""))
        if b_rank is not None and a_rank is not None and a_rank < b_rank:
            return True
        better = facts.better.get(f"{record.runbook_id}/{check_id}")
        b_value, a_value = _number(b.get("value")), _number(a.get("value"))
        if better is None or b_value is None or a_value is None:
            continue
        if (better == "lower" and a_value < b_value) or (better == "higher" and a_value > b_value):
            return True
    return False


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _resolution(facts: ReviewFacts) -> str:
    resolution = facts.incident.summary or f"{TO_FILL} the incident has no resolution summary yet."
    succeeded = [a for a in facts.approvals if a.state == "succeeded"]
    if succeeded:
        resolution += "\n\nActions that ran: " + "; ".join(
            f"{a.action_id} on {a.target} ({a.id})" for a in succeeded
        )
    return resolution


def _follow_ups(facts: ReviewFacts) -> list[str]:
    """Every `TODO:`/`Action:` line (or message marked with the action reaction), then the standard two."""
    items = [
        _follow_up(facts, message, text)
        for message in facts.messages
        for text in _follow_up_texts(facts, message)
    ]
    return [*items, "- [ ] Update runbook", "- [ ] Add monitoring alert"]


def _follow_up_texts(facts: ReviewFacts, message: Message) -> list[str]:
    """Each `TODO:`/`Action:` item wherever it sits in the message; a message marked with the
    action reaction and holding none is one item as a whole."""
    texts = [m.group(2).strip() for m in _ACTION_LINE.finditer(message.text)]
    if not texts and facts.action_reaction in message.reactions:
        texts = [message.text.strip()]
    return [t for t in texts if t]


def _follow_up(facts: ReviewFacts, message: Message, text: str) -> str:
    """The item, owned by the person mentioned right after `TODO:`/`Action:`, else by its author."""
    lead = _LEADING_MENTION.match(text)
    owner = lead.group(1) if lead else facts.users.get(message.user or "", message.user or "")
    shown = f"@{owner}" if owner else "owner to fill"
    return f"- [ ] {text} — owner: {shown} (from {hhmm(message.at)})"


def _checked(facts: ReviewFacts) -> list[str]:
    """One line per diagnosis run from Slack, with the checks that came back red or unseen."""
    checked = []
    for run in facts.diagnoses:
        red = f" — red: {', '.join(run.red)}" if run.red else ""
        red += f" — could not see: {', '.join(run.unseen)}" if run.unseen else ""
        word = STATUS_WORD.get(run.overall, run.overall.upper())
        checked.append(
            f"- {hhmm(run.at)} `{run.runbook_id}` {run.title}: **{word}**{red}"
            f" (asked by {_name(facts, run.requested_by)})"
        )
    return checked or [f"- {TO_FILL} no diagnosis was run from Slack during this incident."]


def _actions(facts: ReviewFacts) -> list[str]:
    lines = [_action(facts, record) for record in facts.approvals]
    return lines or ["- No approved actions were requested during this incident."]


def _action(facts: ReviewFacts, record: ApprovalRecord) -> str:
    """Who asked for the action, why, who approved it, how it ended, and what it changed."""
    who = ", ".join(_name(facts, u) for u in record.approvers) or "nobody"
    line = (
        f"- {hhmm(record.created_at)} {record.id} `{record.action_id}` on `{record.target}` "
        f'({record.risk}): requested by {_name(facts, record.requester)} — "{record.reason}"; '
        f"approved by {who}; outcome: **{record.state}**"
    )
    changes = _changes(record.before_values or {}, record.after_values or {})
    if changes:
        line += "; before → after: " + ", ".join(changes)
    return line


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """'Queue depth 120 → 3' for every value measured before or after, in first-seen order."""
    return [
        f"{(after.get(k) or before.get(k) or {}).get('title', k)} "
        f"{before.get(k, {}).get('value', '?')} → {after.get(k, {}).get('value', '?')}"
        for k in dict.fromkeys([*before, *after])
    ]


def _updates(facts: ReviewFacts) -> list[str]:
    updates = [
        f"- {hhmm(e.at)}: {e.text.removeprefix('Update: ')} ({_name(facts, e.actor)})"
        for e in facts.timeline
        if e.kind == "update"
    ]
    return updates or ["- No status updates were posted."]


def _missing(facts: ReviewFacts, milestones: list[Milestone], root_cause: str | None) -> list[str]:
    """What the data could not fill, in the order the review asks for it."""
    missing = [] if facts.edits.users_affected else ["users affected"]
    missing += [m.name.lower() for m in milestones if m.at is None]
    if root_cause is None:
        missing.append("root cause")
    return missing


def messages_worth_keeping(messages: list[Message]) -> list[Message]:
    """Human messages only (the bot's own cards are already represented by the timeline)."""
    return [m for m in messages if m.user]

"""Everything a review is built from, as plain data (so the builder is a pure function)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from bot.approvals.store import ApprovalRecord
from bot.incidents.store import Incident, TimelineEvent


class Message(BaseModel):
    """A channel message already converted to Markdown."""

    at: datetime
    user: str | None
    text: str
    reactions: list[str] = Field(default_factory=list)
    is_reply: bool = False
    mentions: list[str] = Field(default_factory=list)


class DiagnosisRun(BaseModel):
    at: datetime
    runbook_id: str
    title: str
    overall: str
    requested_by: str | None
    red: list[str] = Field(default_factory=list)  # critical checks, with their values
    unseen: list[str] = Field(default_factory=list)  # unknown checks, with why nothing was measured


class Edits(BaseModel):
    summary: str | None = None
    impact: str | None = None
    users_affected: str | None = None
    root_cause: str | None = None


class ReviewFacts(BaseModel):
    incident: Incident
    timeline: list[TimelineEvent]
    messages: list[Message]
    diagnoses: list[DiagnosisRun]
    approvals: list[ApprovalRecord]
    edits: Edits = Field(default_factory=Edits)
    users: dict[str, str] = Field(default_factory=dict)
    action_reaction: str = "memo"
    root_cause_reaction: str = "dart"
    mitigation_reaction: str = "adhesive_bandage"  # a person marks the mitigation 🩹
    # "runbook_id/check_id" → which way that check's value improves, from its warn/crit rules.
    better: dict[str, Literal["lower", "higher"]] = Field(default_factory=dict)
    generated_at: datetime
    history_read: bool = True
    extra: dict[str, Any] = Field(default_factory=dict)

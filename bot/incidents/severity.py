"""Severity levels with the seeds' defaults (seed 001's table, seed 004's update cadence for P0)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

SeverityName = Literal["p0", "p1", "p2", "p3"]


class Severity(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: SeverityName
    label: str
    emoji: str
    respond_within: str
    update_every_minutes: int | None
    diagnosis_runbook: str | None
    announce_updates: bool


SEVERITIES: dict[str, Severity] = {
    "p0": Severity(
        name="p0",
        label="Critical outage",
        emoji="🔴",
        respond_within="15 minutes",
        update_every_minutes=10,
        diagnosis_runbook="incident.p0",
        announce_updates=True,
    ),
    "p1": Severity(
        name="p1",
        label="Major degradation",
        emoji="🟠",
        respond_within="1 hour",
        update_every_minutes=30,
        diagnosis_runbook="incident.p1",
        announce_updates=True,
    ),
    "p2": Severity(
        name="p2",
        label="Partial degradation",
        emoji="🟡",
        respond_within="4 hours",
        update_every_minutes=30,
        diagnosis_runbook="incident.p2",
        announce_updates=False,
    ),
    "p3": Severity(
        name="p3",
        label="Minor issue",
        emoji="🔵",
        respond_within="1 business day",
        update_every_minutes=None,
        diagnosis_runbook=None,
        announce_updates=False,
    ),
}

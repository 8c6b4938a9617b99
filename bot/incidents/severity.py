"""Severity levels with the seeds' defaults (seed 001's table, seed 004's update cadence for P0)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from bot.yaml_config import ConfigFileError, load_yaml_model

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


# The symptom the declarer names picks the diagnosis runbook; severity keeps its seed default.
SYMPTOM_RUNBOOKS: dict[str, str] = {
    "latency": "perf.diagnose",
    "errors": "incident.p1",
    "down": "incident.p0",
}


def diagnosis_runbook(severities: dict[str, Severity], severity: str, symptom: str | None) -> str | None:
    """The runbook an incident's diagnosis runs: its symptom's, else its severity's."""
    if symptom in SYMPTOM_RUNBOOKS:
        return SYMPTOM_RUNBOOKS[symptom]
    return severities[severity].diagnosis_runbook


class SeverityOverride(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    update_every_minutes: int | None = Field(None, ge=1, le=24 * 60)
    diagnosis_runbook: str | None = Field(None, pattern=r"^[a-z][a-z0-9_.-]*$")
    announce_updates: bool | None = None


class SeverityOverrides(RootModel[dict[SeverityName, SeverityOverride]]):
    """The severities file: what changes for which level."""


class SeverityConfigError(ConfigFileError):
    """The severities file is missing or invalid; one `OPSBOT_SEVERITIES: file: field: message` each."""


def load_severities(path: Path | None) -> dict[str, Severity]:
    """The seeds' defaults, with what OPSBOT_SEVERITIES changes (cadence, diagnosis runbook, announcing).

    p0: {update_every_minutes: 5, diagnosis_runbook: incident.p0}
    p2: {announce_updates: true}
    """
    if path is None:
        return dict(SEVERITIES)
    overrides = load_yaml_model(
        path, SeverityOverrides, setting="OPSBOT_SEVERITIES", error=SeverityConfigError
    )
    merged = dict(SEVERITIES)
    for name, override in overrides.root.items():
        merged[name] = merged[name].model_copy(update=override.model_dump(exclude_unset=True))
    return merged

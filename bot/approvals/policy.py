"""Who may request and approve what, where, how many approvals, and for how long a request stands.

Read from the YAML file in OPSBOT_POLICY; without one, the defaults apply: anyone may request,
members of the `approvers` user group approve, one approval (two for `critical`), 15 minutes.
Principals are Slack user ids (U…/W…), user group ids (S…) or user group handles (`approvers`).

    defaults:
      high: {approvers: [approvers], approvals: 1, expiry_minutes: 15}
      critical: {approvers: [approvers, managers], approvals: 2}
    overrides:
      db.connections:terminate_idle: {channels: [incident-response]}
      cache.stats: {requesters: [oncall]}
    reading:                  # who may read which diagnoses where (see bot/access/reading.py)
      defaults:
        personal: {readers: [oncall], channels: [private, incident, im], redact: true}
      overrides:
        db.slow-queries: {readers: [oncall, dba]}
    redaction:                # what redaction masks (see bot/redaction.py); every rule is on by default
      patterns: [{name: order_ref, regex: 'ORD-[0-9]{8}', replacement: '[order]'}]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from bot.access.reading import Principal, ReadingPolicy
from bot.redaction import RedactionSettings
from bot.yaml_config import ConfigFileError, load_yaml_model


class PolicyError(ConfigFileError):
    """The policy file is missing or invalid; one `OPSBOT_POLICY: file: field: message` line per problem."""


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    requesters: list[Principal] = Field(default_factory=list)
    approvers: list[Principal] = Field(default_factory=lambda: ["approvers"], min_length=1)
    approvals: int = Field(1, ge=1, le=3)
    channels: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")]] = Field(default_factory=list)
    expiry_minutes: int = Field(15, ge=1, le=24 * 60)


class RuleOverride(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    requesters: list[Principal] | None = None
    approvers: list[Principal] | None = Field(None, min_length=1)
    approvals: int | None = Field(None, ge=1, le=3)
    channels: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")]] | None = None
    expiry_minutes: int | None = Field(None, ge=1, le=24 * 60)


def _default_rules() -> dict[str, Rule]:
    return {"low": Rule(), "high": Rule(), "critical": Rule(approvals=2)}


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: dict[str, Rule] = Field(default_factory=_default_rules)
    overrides: dict[Annotated[str, Field(pattern=r"^[a-z0-9_.-]+(:[a-z0-9_]+)?$")], RuleOverride] = Field(
        default_factory=dict
    )
    # Who may read which diagnoses where (bot.access.reading); absent → the safe defaults.
    reading: ReadingPolicy = Field(default_factory=ReadingPolicy)
    # What is masked in a diagnosis the reading policy says to redact (bot.redaction).
    redaction: RedactionSettings = Field(default_factory=RedactionSettings)

    def rule_for(
        self, runbook_id: str, action_id: str, risk: str, needs_approvals: int | None = None
    ) -> Rule:
        """The rule for one action: risk default, then runbook override, then action override."""
        rule = self.defaults.get(risk) or _default_rules().get(risk) or Rule()
        for key in (runbook_id, f"{runbook_id}:{action_id}"):
            override = self.overrides.get(key)
            if override is not None:
                rule = rule.model_copy(update=override.model_dump(exclude_none=True))
        if needs_approvals is not None and needs_approvals > rule.approvals:
            rule = rule.model_copy(update={"approvals": needs_approvals})
        return rule


def load_policy(path: Path | None) -> Policy:
    if path is None:
        return Policy()
    return load_yaml_model(path, Policy, setting="OPSBOT_POLICY", error=PolicyError)

"""The reading policy: per data class (and per runbook) who may run a diagnosis, where, and how the
answer is given (to the channel or only to the asker, redacted or not).

Defaults are safe: operational diagnoses for every full member anywhere; personal data only for the
`oncall` group, in private or incident channels or a DM, redacted; secret-adjacent data the same and
answered only to the asker. Externally shared channels are never allowed: that is not configurable.

    reading:
      defaults:
        personal: {readers: [oncall, dba], channels: [incident, im]}
      overrides:
        db.user: {readers: [S0DBA], ephemeral: true}

`decide` is a pure function of the policy, the runbook and the facts, except for group membership,
which it asks through `includes` (the `Directory`, at the moment of the request).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from bot.access.facts import ChannelFacts, PersonFacts
from bot.runbooks.model import DataClass

Principal = Annotated[str, Field(pattern=r"^([UWS][A-Z0-9]{2,20}|[a-z0-9][a-z0-9._-]{0,79})$")]
"""A Slack user id (U…/W…), a user group id (S…) or a user group handle (`oncall`)."""

Place = Literal["public", "private", "incident", "im"]
ALL_PLACES: tuple[Place, ...] = get_args(Place)
# Is `user` one of these principals (a user id, or a member of a listed group)?
Includes = Callable[[str, list[str]], Awaitable[bool]]


class ReadingRule(BaseModel):
    """Who may read one class of data, where, and how it is answered. No readers: every full member."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    readers: list[Principal] = Field(default_factory=list)
    channels: list[Place] = Field(default_factory=lambda: list(ALL_PLACES), min_length=1)
    ephemeral: bool = False
    redact: bool = False


class ReadingOverride(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    readers: list[Principal] | None = None
    channels: list[Place] | None = Field(None, min_length=1)
    ephemeral: bool | None = None
    redact: bool | None = None


def default_reading_rules() -> dict[DataClass, ReadingRule]:
    private: list[Place] = ["private", "incident", "im"]
    return {
        "operational": ReadingRule(),
        "personal": ReadingRule(readers=["oncall"], channels=private, redact=True),
        "secret_adjacent": ReadingRule(readers=["oncall"], channels=private, ephemeral=True, redact=True),
    }


def default_reading_overrides() -> dict[str, ReadingOverride]:
    """The severity checklists show log lines (personal), but whoever declares or commands an incident
    must see them at 3 a.m. without being on call: any full member, still only in private or incident
    channels, still redacted. A policy file's `overrides:` replaces these."""
    anyone = ReadingOverride(readers=[])
    return {runbook: anyone for runbook in ("incident.p0", "incident.p1", "incident.respond")}


class ReadingPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: dict[DataClass, ReadingRule] = Field(default_factory=default_reading_rules)
    overrides: dict[Annotated[str, Field(pattern=r"^[a-z0-9_.-]+$")], ReadingOverride] = Field(
        default_factory=default_reading_overrides
    )

    def rule_for(self, runbook_id: str, data: DataClass) -> ReadingRule:
        """The class's rule (a class the file leaves out keeps its safe default), then the override."""
        rule = self.defaults.get(data) or default_reading_rules()[data]
        override = self.overrides.get(runbook_id)
        if override is not None:
            rule = rule.model_copy(update=override.model_dump(exclude_none=True))
        return rule


class ReadingDecision(BaseModel):
    """Whether the diagnosis may be shown here, and how; `reason` says why not (for the audit)."""

    model_config = ConfigDict(frozen=True)

    allowed: bool
    ephemeral: bool = False
    redact: bool = False
    reason: str = ""
    rule: ReadingRule


def places_of(channel: ChannelFacts) -> set[Place]:
    """The policy's names for a channel: its kind, plus `incident` for an incident's channel.
    A group DM counts as private: only the people in it read it."""
    base: Place = "im" if channel.kind == "im" else "public" if channel.kind == "public" else "private"
    return {base, "incident"} if channel.is_incident else {base}


def refusal_of_person(person: PersonFacts) -> str | None:
    """Why this person may not use opsbot at all, or None for a full member of our workspace."""
    if person.is_external:
        return f"external user (team {person.team_id})"
    if person.is_guest:
        return "guest"
    return None


async def decide(
    policy: ReadingPolicy,
    runbook_id: str,
    data: DataClass,
    person: PersonFacts | None,
    channel: ChannelFacts,
    includes: Includes,
) -> ReadingDecision:
    """May `person` (None: nobody asked — a schedule, an alert) see this runbook's result in `channel`?"""
    rule = policy.rule_for(runbook_id, data)

    def refused(reason: str) -> ReadingDecision:
        return ReadingDecision(allowed=False, reason=reason, rule=rule)

    if channel.is_ext_shared:
        return refused("externally shared channel")
    if person is not None and (why := refusal_of_person(person)) is not None:
        return refused(why)
    if not places_of(channel) & set(rule.channels):
        return refused(f"{data} data is not shown in a {channel.kind} channel")
    if rule.ephemeral and person is None:
        return refused(f"{data} data is answered only to the person who asks, and nobody asked")
    if person is not None and rule.readers and not await includes(person.user_id, list(rule.readers)):
        return refused(f"not one of the readers ({', '.join(rule.readers)})")
    return ReadingDecision(allowed=True, ephemeral=rule.ephemeral, redact=rule.redact, rule=rule)

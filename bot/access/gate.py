"""The access gate: who may use opsbot at all (admission) and who may read a diagnosis where
(the reading policy), judged on Slack's facts at the moment of the request or click.

Every refusal is written to the audit log (`action="access.refused"`: who, what, where, why) and
logged; the person reads a short sentence saying where or by whom it is allowed instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from psycopg_pool import AsyncConnectionPool

from bot import audit
from bot.access.facts import ChannelFacts, Facts, FactsUnavailable
from bot.access.reading import (
    Includes,
    Place,
    ReadingDecision,
    ReadingPolicy,
    ReadingRule,
    decide,
    refusal_of_person,
)
from bot.errors import UserError
from bot.logs import get_logger
from bot.runbooks.engine import Diagnosis
from bot.runbooks.model import DataClass, Runbook

log = get_logger(__name__)

REFUSED = "access.refused"
IsIncidentChannel = Callable[[str], Awaitable[bool]]
Redact = Callable[[Diagnosis], Diagnosis]

_DATA_WORDS: dict[DataClass, str] = {
    "operational": "operational data",
    "personal": "personal data",
    "secret_adjacent": "data close to secrets",
}
_PLACE_WORDS: dict[Place, str] = {
    "public": "a public channel",
    "private": "a private channel",
    "incident": "an incident channel",
    "im": "a DM with opsbot",
}


class ReadingRefused(UserError):
    """The reading policy does not let this person see this diagnosis here (or at all)."""


class Refusal(UserError):
    """Admission refused: `reason` is for the audit log, `message` for the person."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class AccessGate:
    def __init__(
        self,
        facts: Facts,
        policy: ReadingPolicy,
        pool: AsyncConnectionPool,
        *,
        includes: Includes,
        is_incident_channel: IsIncidentChannel,
        redact: Redact,
    ) -> None:
        self.facts = facts
        self._policy = policy
        self._pool = pool
        self._includes = includes
        self._is_incident_channel = is_incident_channel
        self._redact = redact

    async def admit(self, user: str, channel: str | None, subject: str, *, ext_shared: bool = False) -> None:
        """Raise `Refusal` (audited) unless `user` is a full member of our workspace and `channel` is
        not shared with another organisation. `ext_shared`: the delivery itself says it is."""
        refusal = await self._admission(user, channel, ext_shared)
        if refusal is not None:
            await self.record_refusal(user, subject, channel, refusal.reason)
            raise refusal

    async def _admission(self, user: str, channel: str | None, ext_shared: bool) -> Refusal | None:
        try:
            person = await self.facts.person(user)
            workspace = (await self.facts.workspace()).name or "this workspace"
        except FactsUnavailable as exc:
            return Refusal(
                f"could not check who you are ({exc.error})",
                "opsbot could not check who you are just now, so nothing ran. Please retry in a minute.",
            )
        why = refusal_of_person(person)
        if why is not None:
            return Refusal(
                why,
                f"Sorry, opsbot is not available to guests or to people outside {workspace}; "
                "ask a full member of the team.",
            )
        if ext_shared or await self._ext_shared(channel):
            return Refusal(
                "externally shared channel",
                f"opsbot does not work in channels shared with people outside {workspace}, so that "
                "nothing it finds is posted where they can read it. Run it in an internal channel.",
            )
        return None

    async def _ext_shared(self, channel: str | None) -> bool:
        # A channel opsbot cannot see (a private channel it is not in, a DM between two people) is
        # let through here: nothing can be posted there, and `reading` fails closed on it.
        if channel is None:
            return False
        try:
            return (await self.facts.channel(channel)).is_ext_shared
        except FactsUnavailable:
            return False

    async def reading(self, runbook: Runbook, user: str | None, channel: str) -> ReadingDecision:
        """May `user` (None: a schedule or an alert) see `runbook`'s result in `channel`? Refused →
        `ReadingRefused` (audited) saying who may run it and where."""
        data = runbook.data
        rule = self._policy.rule_for(runbook.id, data)
        try:
            person = await self.facts.person(user) if user is not None else None
            if person is not None and person.is_bot:
                person = None  # the bot itself asking (an alert route's incident) is an unattended run
            place = await self._channel(channel)
        except FactsUnavailable as exc:
            decision = ReadingDecision(allowed=False, reason=f"could not check the {exc.what}", rule=rule)
        else:
            decision = await decide(self._policy, runbook.id, data, person, place, self._includes)
        if decision.allowed:
            return decision
        await self.record_refusal(user, runbook.id, channel, decision.reason, data=data)
        raise ReadingRefused(self._explain(runbook, data, decision, person_refused=_about_person(decision)))

    def redact(self, diagnosis: Diagnosis) -> Diagnosis:
        return self._redact(diagnosis)

    async def _channel(self, channel: str) -> ChannelFacts:
        facts = await self.facts.channel(channel)
        return facts.model_copy(update={"is_incident": await self._is_incident_channel(facts.id)})

    async def record_refusal(
        self, user: str | None, subject: str, channel: str | None, reason: str, **details: Any
    ) -> None:
        log.info("access_refused", subject=subject, channel=channel, reason=reason)
        async with self._pool.connection() as conn:
            await audit.append(
                conn,
                audit.AuditEvent(
                    actor=user or "opsbot",
                    action=REFUSED,
                    outcome="refused",
                    subject=subject[:200],
                    channel=channel,
                    details={"reason": reason, **details},
                ),
            )

    def _explain(
        self, runbook: Runbook, data: DataClass, decision: ReadingDecision, *, person_refused: bool
    ) -> str:
        what = runbook.command.text if runbook.command else f"/runbook run {runbook.id}"
        if decision.reason == "externally shared channel":
            return (
                f"`{what}` is not run in channels shared with other organisations: nothing opsbot finds is "
                "posted where people outside the team can read it. Run it in an internal channel."
            )
        if decision.reason.startswith("could not check"):
            return f"opsbot {decision.reason} just now, so `{what}` did not run. Please retry in a minute."
        if person_refused:
            return "Sorry, opsbot is not available to guests or to people outside this workspace."
        return f"`{what}` shows {_DATA_WORDS[data]}: {_who_and_where(decision.rule)}."


def _about_person(decision: ReadingDecision) -> bool:
    return decision.reason == "guest" or decision.reason.startswith("external user")


def _who_and_where(rule: ReadingRule) -> str:
    who = "anyone in the team may run it" if not rule.readers else f"only {_names(rule.readers)} may run it"
    places = [_PLACE_WORDS[p] for p in rule.channels]
    where = places[0] if len(places) == 1 else ", ".join(places[:-1]) + " or " + places[-1]
    answer = ", and the answer goes only to the person who asked" if rule.ephemeral else ""
    return f"{who}, in {where}{answer}"


def _names(principals: list[str]) -> str:
    def name(principal: str) -> str:
        if principal[:1] in ("U", "W") and principal.isupper():
            return f"<@{principal}>"
        if principal[:1] == "S" and principal.isupper():
            return f"<!subteam^{principal}>"
        return f"@{principal}"

    names = [name(p) for p in principals]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]

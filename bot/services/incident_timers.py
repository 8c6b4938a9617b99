"""Incident timers on the PostgreSQL job queue: the update reminder at the severity's cadence (with
snooze) and the escalation tiers — so they survive restarts and fire once across replicas."""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime

from slack_sdk.web.async_client import AsyncWebClient

from bot.incidents.severity import Severity
from bot.incidents.store import Incident, IncidentStore
from bot.jobs import AlreadyQueuedError, JobQueue
from bot.render import incident as render
from bot.slack.directory import Directory
from bot.slack.outbox import Outbox
from bot.slack.post import invite, post_message


def now_key() -> str:
    """A key unique to this moment, for timeline entries that may repeat (snoozes, updates)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")


class IncidentTimers:
    def __init__(
        self,
        store: IncidentStore,
        client: AsyncWebClient,
        jobs: JobQueue,
        outbox: Outbox,
        directory: Directory,
        *,
        tiers: list[tuple[int, str]],
        severities: dict[str, Severity],
        scale: float = 1.0,
    ) -> None:
        self.store = store
        self._client = client
        self._jobs = jobs
        self._outbox = outbox
        self._directory = directory
        self._tiers = tiers
        self.severities = severities
        self._scale = scale
        jobs.task("incident.remind", self._remind)
        jobs.task("incident.escalate", self._escalate)

    async def cancel(self, incident: Incident) -> int:
        """Every timer of a resolved incident; returns how many were still queued."""
        return await self._jobs.cancel_tagged(self._tag(incident.id))

    @staticmethod
    def _tag(incident_id: str) -> str:
        return f"incident:{incident_id}"

    async def _schedule_reminder(self, incident: Incident, minutes: float) -> None:
        await self._jobs.cancel_queued(f"remind:{incident.id}")
        # Two snooze clicks at once: the other one scheduled the reminder between cancel and defer.
        with suppress(AlreadyQueuedError):
            await self._jobs.defer(
                "incident.remind",
                in_seconds=minutes * 60 * self._scale,
                queueing_lock=f"remind:{incident.id}",
                tags=[self._tag(incident.id)],
                incident_id=incident.id,
            )

    async def plan(self, incident: Incident) -> None:
        """The update reminder at the severity's cadence and every escalation tier after 0 minutes,
        each tier counted from the declaration (a tier already due is not planned again)."""
        cadence = self.severities[incident.severity].update_every_minutes
        if cadence is not None:
            await self._schedule_reminder(incident, cadence)
        since = (datetime.now(UTC) - incident.declared_at).total_seconds()
        for tier, (minutes, _) in enumerate(self._tiers, start=1):
            due = minutes * 60 * self._scale - since
            if minutes > 0 and due > 0:
                await self._jobs.defer(
                    "incident.escalate",
                    in_seconds=due,
                    tags=[self._tag(incident.id)],
                    incident_id=incident.id,
                    tier=tier,
                )

    async def replan(self, incident: Incident) -> int:
        """After a severity change: the queued timers go, and the new severity's are planned.
        Returns how many queued timers were cancelled."""
        cancelled = await self.cancel(incident)
        await self.plan(incident)
        return cancelled

    async def snooze(self, incident: Incident, minutes: int, by: str) -> None:
        await self._schedule_reminder(incident, minutes)
        await self.store.add_event(
            incident.id,
            kind="snoozed",
            actor=by,
            source_key=f"snooze:{now_key()}",
            text=f"Update reminder snoozed for {minutes} minutes",
        )

    async def _remind(self, incident_id: str) -> None:
        incident = await self.store.get(incident_id)
        if incident is None or incident.status == "resolved" or incident.channel_id is None:
            return
        cadence = self.severities[incident.severity].update_every_minutes
        if cadence is None:
            return
        people = " ".join(f"<@{u}>" for u in dict.fromkeys([incident.comms_lead, incident.commander]) if u)
        if incident.commander is None:
            text = f"⚠️ {incident.id} has no incident commander. `/incident role commander @person`"
        else:
            text = (
                f"⏰ {people} time for a status update on {incident.id} "
                f"({incident.severity.upper()}: every {cadence} min). `/incident update <text>`"
            )
        await post_message(
            self._client,
            incident.channel_id,
            text,
            [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {
                    "type": "actions",
                    "block_id": f"snooze:{incident.id}",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": f"{render.SNOOZE}:{m}",
                            "value": incident.id,
                            "text": {"type": "plain_text", "text": f"Snooze {m} min"},
                        }
                        for m in (10, 30)
                    ],
                },
            ],
        )
        await self.store.add_event(
            incident.id, kind="reminder", source_key=f"remind:{now_key()}", text="Update reminder"
        )
        await self._schedule_reminder(incident, cadence)

    async def _escalate(self, incident_id: str, tier: int) -> None:
        incident = await self.store.get(incident_id)
        if incident is None or incident.status == "resolved" or incident.channel_id is None:
            return
        minutes, group = self._tiers[tier - 1]
        members = await self._directory.members(group)
        group_id = await self._directory.group_id(group)
        mention = f"<!subteam^{group_id}>" if group_id else f"@{group}"
        text = (
            f"⏫ {incident.id} is still open after {minutes} minutes: escalating to tier {tier} {mention}"
            + ("" if members else " (the group has no members!)")
        )
        await self._outbox.say(incident.channel_id, text)
        for user in members:
            await invite(self._client, incident.channel_id, user)
        await self.store.add_event(
            incident.id,
            kind="escalated",
            source_key=f"escalate:{tier}",
            text=f"Escalated to tier {tier} ({group})",
        )

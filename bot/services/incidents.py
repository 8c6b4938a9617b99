"""The incident lifecycle: declare (channel, topic, card, announcement), roles, updates, severity,
notes, resolve — each change stored, shown on the card and topic, and written to the timeline.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.incidents.naming import channel_name
from bot.incidents.severity import Severity
from bot.incidents.store import Incident, IncidentStore
from bot.jobs import AlreadyQueuedError, JobQueue
from bot.logs import get_logger
from bot.mrkdwn import clip, escape
from bot.paging import Pager, PageResult
from bot.render import incident as render
from bot.slack.directory import Directory
from bot.slack.outbox import Outbox
from bot.slack.post import post_message

log = get_logger(__name__)
ROLE_NAMES = {"commander": "incident commander", "comms": "communications lead", "scribe": "scribe"}


class IncidentError(Exception):
    """Something the person should be told (not a bug): the message says what and what to do."""


def parse_tiers(spec: str) -> list[tuple[int, str]]:
    """`0=oncall,15=approvers,30=managers` → [(0, "oncall"), (15, "approvers"), (30, "managers")]."""
    tiers = []
    for part in spec.split(","):
        minutes, _, group = part.partition("=")
        tiers.append((int(minutes), group))
    return sorted(tiers)


class IncidentService:
    def __init__(
        self,
        store: IncidentStore,
        client: AsyncWebClient,
        announce_channel: str,
        *,
        jobs: JobQueue,
        outbox: Outbox,
        directory: Directory,
        pager: Pager,
        tiers: list[tuple[int, str]],
        severities: dict[str, Severity],
        timer_scale: float = 1.0,
    ) -> None:
        self.store = store
        self._client = client
        self._announce_channel = announce_channel
        self._jobs = jobs
        self._outbox = outbox
        self._directory = directory
        self.pager = pager
        self._tiers = tiers
        self.severities = severities
        self._scale = timer_scale
        jobs.task("incident.remind", self._remind)
        jobs.task("incident.escalate", self._escalate)

    # --- timers: on the Postgres job queue, so they survive restarts and fire once across replicas ---

    def _tag(self, incident_id: str) -> str:
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

    async def _schedule_timers(self, incident: Incident) -> None:
        cadence = self.severities[incident.severity].update_every_minutes
        if cadence is not None:
            await self._schedule_reminder(incident, cadence)
        for tier, (minutes, _) in enumerate(self._tiers, start=1):
            if minutes > 0:
                await self._jobs.defer(
                    "incident.escalate",
                    in_seconds=minutes * 60 * self._scale,
                    tags=[self._tag(incident.id)],
                    incident_id=incident.id,
                    tier=tier,
                )

    async def snooze(self, incident: Incident, minutes: int, by: str) -> None:
        await self._schedule_reminder(incident, minutes)
        await self.store.add_event(
            incident.id,
            kind="snoozed",
            actor=by,
            source_key=f"snooze:{_now_key()}",
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
            incident.id, kind="reminder", source_key=f"remind:{_now_key()}", text="Update reminder"
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
        await self._say(incident.channel_id, text)
        for user in members:
            await self._invite(incident.channel_id, user)
        await self.store.add_event(
            incident.id,
            kind="escalated",
            source_key=f"escalate:{tier}",
            text=f"Escalated to tier {tier} ({group})",
        )

    async def page(self, incident: Incident, by: str) -> PageResult:
        link = f"<#{incident.channel_id}>" if incident.channel_id else None
        result = await self.pager.trigger(
            incident_id=incident.id,
            severity=incident.severity,
            summary=f"{incident.severity.upper()} {incident.title}",
            link=link,
        )
        if result.ok:
            await self.store.add_event(
                incident.id,
                kind="paged",
                actor=by,
                source_key=f"page:{_now_key()}",
                text="On-call paged (PagerDuty)",
            )
        return result

    async def declare(
        self,
        *,
        title: str,
        severity: str,
        user: str,
        service: str | None = None,
        security_sensitive: bool = False,
    ) -> Incident:
        channel_id, name = await self._create_channel(title, datetime.now(UTC))
        try:
            incident = await self.store.create(
                title=title,
                severity=severity,
                service=service,
                security_sensitive=security_sensitive,
                declared_by=user,
                channel_id=channel_id,
                channel_name=name,
            )
        except Exception:
            # Nothing was stored, so nobody should start working in a channel opsbot knows nothing of.
            await self._archive(channel_id)
            raise
        await self._schedule_timers(incident)
        await self._invite(channel_id, user)
        ts = await post_message(self._client, channel_id, render.card_text(incident), render.card(incident))
        incident = await self.store.attach_card(incident.id, ts) or incident
        await self._set_topic(incident)
        await self._announce(render.announcement(incident), incident.id)
        log.info("incident_declared", incident_id=incident.id, severity=severity, channel=name)
        return incident

    async def _create_channel(self, title: str, declared: datetime) -> tuple[str, str]:
        for attempt in range(20):
            name = channel_name(title, declared, attempt)
            try:
                response = await self._client.conversations_create(name=name)
            except SlackApiError as exc:
                if exc.response.get("error") == "name_taken":
                    continue
                raise IncidentError(
                    f"I could not create the incident channel ({exc.response.get('error')})."
                ) from None
            channel = response["channel"]
            return str(channel["id"]), str(channel["name"])
        raise IncidentError("Every channel name I tried for this incident is taken.")

    async def _archive(self, channel_id: str) -> None:
        try:
            await self._client.conversations_archive(channel=channel_id)
        except SlackApiError as exc:
            log.warning(
                "incident_channel_archive_failed", channel=channel_id, error=exc.response.get("error")
            )

    async def _invite(self, channel_id: str, user: str) -> None:
        try:
            await self._client.conversations_invite(channel=channel_id, users=user)
        except SlackApiError as exc:
            if exc.response.get("error") not in ("already_in_channel", "cant_invite_self"):
                log.warning("incident_invite_failed", error=exc.response.get("error"))

    async def _set_topic(self, incident: Incident) -> None:
        if incident.channel_id is None:
            return
        try:
            await self._client.conversations_setTopic(
                channel=incident.channel_id, topic=render.topic(incident)
            )
        except SlackApiError as exc:
            log.warning("incident_topic_failed", error=exc.response.get("error"))

    async def _say(self, channel: str, text: str) -> None:
        """Post one mrkdwn section (same text as the notification fallback); kept and sent later
        if Slack is down, since nothing else would repeat it."""
        section = {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, 2900)}}
        await self._outbox.post(channel, text, blocks=[section])

    async def _announce(self, text: str, incident_id: str) -> None:
        """Tell #incident-response; a failure there must not stop the incident itself."""
        try:
            await self._say(self._announce_channel, text)
        except SlackApiError as exc:
            log.warning(
                "incident_announcement_failed", incident_id=incident_id, error=exc.response.get("error")
            )

    async def refresh(self, incident: Incident, *, open_approvals: int = 0) -> None:
        """Redraw the card and the topic after a change."""
        await self._set_topic(incident)
        if incident.channel_id and incident.card_ts:
            try:
                await self._client.chat_update(
                    channel=incident.channel_id,
                    ts=incident.card_ts,
                    text=render.card_text(incident),
                    blocks=render.card(incident, open_approvals=open_approvals),
                )
            except SlackApiError as exc:
                log.warning("incident_card_update_failed", error=exc.response.get("error"))

    async def set_role(self, incident: Incident, role: str, user: str, by: str) -> Incident:
        updated = await self.store.set_role(incident.id, role, user)
        if updated is None:
            raise IncidentError("That incident no longer exists.")
        if updated.channel_id:
            await self._invite(updated.channel_id, user)
        await self.store.add_event(
            incident.id,
            kind="role",
            actor=by,
            source_key=f"role:{role}:{user}:{_now_key()}",
            text=f"<@{user}> is {ROLE_NAMES[role]}",
        )
        await self.refresh(updated)
        return updated

    async def set_severity(self, incident: Incident, severity: str, by: str) -> Incident:
        if incident.severity == severity:
            raise IncidentError(f"{incident.id} is already {severity.upper()}.")
        updated = await self.store.set_severity(incident.id, severity)
        if updated is None:
            raise IncidentError(f"{incident.id} is resolved; its severity can no longer change.")
        await self.store.add_event(
            incident.id,
            kind="severity",
            actor=by,
            source_key=f"severity:{_now_key()}",
            text=f"Severity {incident.severity.upper()} → {severity.upper()}",
        )
        await self.refresh(updated)
        return updated

    async def post_update(self, incident: Incident, text: str, by: str) -> Incident:
        updated = await self.store.post_update(incident.id, text, None)
        if updated is None:
            raise IncidentError(f"{incident.id} is resolved.")
        message = f"📣 *Update on {incident.id}* from <@{by}>: {escape(text)}"
        assert incident.channel_id is not None
        await self._say(incident.channel_id, message)
        severity = self.severities[updated.severity]
        if severity.announce_updates:
            summary = (
                f"{severity.emoji} {incident.id} ({updated.severity.upper()}) update: "
                f"{escape(text)} — <#{incident.channel_id}>"
            )
            await self._announce(summary, incident.id)
        await self.store.add_event(
            incident.id, kind="update", actor=by, source_key=f"update:{_now_key()}", text=f"Update: {text}"
        )
        await self.refresh(updated)
        return updated

    async def note(self, incident: Incident, text: str, by: str, key: str) -> bool:
        return await self.store.add_event(
            incident.id, kind="note", actor=by, source_key=f"note:{key}", text=f"Note: {text}"
        )

    async def resolve(self, incident: Incident, summary: str, by: str) -> Incident:
        resolved = await self.store.resolve(incident.id, by, summary)
        if resolved is None:
            raise IncidentError(f"{incident.id} is already resolved.")
        cancelled = await self._jobs.cancel_tagged(self._tag(incident.id))
        log.info("incident_timers_cancelled", incident_id=incident.id, cancelled=cancelled)
        await self.store.add_event(
            incident.id,
            kind="resolved",
            actor=by,
            source_key="resolved",
            text=f"Resolved: {summary}",
            at=resolved.resolved_at,
        )
        await self.refresh(resolved)
        assert resolved.channel_id is not None
        duration = render.elapsed(resolved.declared_at, resolved.resolved_at)
        message = (
            f"✅ *{resolved.id} resolved* by <@{by}> after {duration}: {escape(summary)}\n"
            f"*Root cause:* {escape(resolved.root_cause or 'not recorded')}"
        )
        await post_message(
            self._client,
            resolved.channel_id,
            message,
            [
                {"type": "section", "text": {"type": "mrkdwn", "text": message[:2900]}},
                {
                    "type": "actions",
                    "block_id": f"review:{resolved.id}",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": render.REVIEW,
                            "value": resolved.id,
                            "style": "primary",
                            "text": {"type": "plain_text", "text": "Draft review"},
                        }
                    ],
                },
            ],
        )
        await self._announce(
            f"✅ *{resolved.id} resolved* after {duration}: {escape(resolved.title)} "
            f"— <#{resolved.channel_id}>",
            resolved.id,
        )
        return resolved


def _now_key() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")

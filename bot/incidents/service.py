"""The incident lifecycle: declare (channel, topic, card, announcement), roles, updates, severity,
notes, resolve — each change stored, shown on the card and topic, and written to the timeline.
"""

from __future__ import annotations

from datetime import UTC, datetime

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.incidents.naming import channel_name
from bot.incidents.severity import SEVERITIES
from bot.incidents.store import Incident, IncidentStore
from bot.logs import get_logger
from bot.render import incident as render
from bot.render.blocks import escape
from bot.slack_out import PostFailed, post_message

log = get_logger(__name__)
ROLE_NAMES = {"commander": "incident commander", "comms": "communications lead", "scribe": "scribe"}


class IncidentError(Exception):
    """Something the person should be told (not a bug): the message says what and what to do."""


class IncidentService:
    def __init__(self, store: IncidentStore, client: AsyncWebClient, announce_channel: str) -> None:
        self.store = store
        self._client = client
        self._announce_channel = announce_channel

    async def declare(
        self,
        *,
        title: str,
        severity: str,
        user: str,
        service: str | None = None,
        security_sensitive: bool = False,
    ) -> Incident:
        incident = await self.store.create(
            title=title,
            severity=severity,
            service=service,
            security_sensitive=security_sensitive,
            declared_by=user,
        )
        channel_id, name = await self._create_channel(incident)
        incident = await self.store.attach_channel(incident.id, channel_id, name) or incident
        await self._invite(channel_id, user)
        ts = await post_message(self._client, channel_id, render.card_text(incident), render.card(incident))
        incident = await self.store.attach_card(incident.id, ts) or incident
        await self._set_topic(incident)
        await self.store.add_event(
            incident.id,
            kind="declared",
            actor=user,
            source_key="declared",
            text=f"Declared {severity.upper()}: {title}",
            at=incident.declared_at,
        )
        try:
            await post_message(
                self._client,
                self._announce_channel,
                render.announcement(incident),
                [{"type": "section", "text": {"type": "mrkdwn", "text": render.announcement(incident)}}],
            )
        except PostFailed as exc:
            log.warning("incident_announcement_failed", incident_id=incident.id, error=exc.error)
        log.info("incident_declared", incident_id=incident.id, severity=severity, channel=name)
        return incident

    async def _create_channel(self, incident: Incident) -> tuple[str, str]:
        for attempt in range(20):
            name = channel_name(incident.title, incident.declared_at, attempt)
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
        await post_message(
            self._client,
            incident.channel_id,
            message,
            [{"type": "section", "text": {"type": "mrkdwn", "text": message[:2900]}}],
        )
        if SEVERITIES[updated.severity].announce_updates:
            summary = (
                f"{SEVERITIES[updated.severity].emoji} {incident.id} ({updated.severity.upper()}) update: "
                f"{escape(text)} — <#{incident.channel_id}>"
            )
            try:
                await post_message(
                    self._client,
                    self._announce_channel,
                    summary,
                    [{"type": "section", "text": {"type": "mrkdwn", "text": summary[:2900]}}],
                )
            except PostFailed as exc:
                log.warning("incident_update_announce_failed", error=exc.error)
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
            [{"type": "section", "text": {"type": "mrkdwn", "text": message[:2900]}}],
        )
        try:
            await post_message(
                self._client,
                self._announce_channel,
                f"✅ {resolved.id} resolved after {duration}: {resolved.title}",
                [
                    {
                        "type": "section",
                        "text": {
                            "type": "mrkdwn",
                            "text": f"✅ *{resolved.id} resolved* after {duration}: "
                            f"{escape(resolved.title)} — <#{resolved.channel_id}>",
                        },
                    }
                ],
            )
        except PostFailed as exc:
            log.warning("incident_resolve_announce_failed", error=exc.error)
        return resolved


def _now_key() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")

"""The incident lifecycle: declare (channel, topic, card, announcement), roles, updates, severity,
notes, root cause, resolve — each change stored, shown on the card and topic, and written to the
timeline — and the use cases Slack's `/incident` verbs, card buttons and forms call.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import UserError
from bot.incidents.naming import channel_name
from bot.incidents.severity import Severity, diagnosis_runbook
from bot.incidents.store import Incident, IncidentStore
from bot.jobs import JobQueue
from bot.logs import get_logger
from bot.mrkdwn import escape
from bot.paging import Pager, PageResult
from bot.postmortem.history import read_channel, timeline_people, user_names
from bot.render import incident as render
from bot.runbooks.commands import RunRequest
from bot.runbooks.model import STATUS_WORD
from bot.services.diagnoses import DiagnosisService
from bot.services.incident_timers import IncidentTimers, now_key
from bot.slack.asker import Asker, tell
from bot.slack.directory import Directory
from bot.slack.outbox import Outbox
from bot.slack.post import invite, post_message

log = get_logger(__name__)
ROLE_NAMES = {"commander": "incident commander", "comms": "communications lead", "scribe": "scribe"}


class IncidentError(UserError):
    """An incident change that cannot be made; the message says what and what to do."""


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
        diagnoses: DiagnosisService,
        open_approvals: Callable[[str], Awaitable[int]],
        timer_scale: float = 1.0,
        root_cause_reaction: str = "dart",
    ) -> None:
        self.store = store
        self._root_cause_reaction = root_cause_reaction
        self._diagnoses = diagnoses
        self._open_approvals = open_approvals
        self._client = client
        self._announce_channel = announce_channel
        self._outbox = outbox
        self.pager = pager
        self.severities = severities
        self.timers = IncidentTimers(
            store, client, jobs, outbox, directory, tiers=tiers, severities=severities, scale=timer_scale
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
                source_key=f"page:{now_key()}",
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
        symptom: str | None = None,
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
                symptom=symptom,
            )
        except Exception:
            # Nothing was stored, so nobody should start working in a channel opsbot knows nothing of.
            await self._archive(channel_id)
            raise
        await self.timers.plan(incident)
        await invite(self._client, channel_id, user)
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

    async def _set_topic(self, incident: Incident) -> None:
        """Set the channel topic only when its text changes (the last one set is remembered)."""
        if incident.channel_id is None:
            return
        topic = render.topic(incident)
        if not await self.store.set_topic(incident.id, topic):
            return
        try:
            await self._client.conversations_setTopic(channel=incident.channel_id, topic=topic)
        except SlackApiError as exc:
            log.warning("incident_topic_failed", error=exc.response.get("error"))
            await self.store.set_topic(incident.id, None)  # not set: the next change tries again

    async def _announce(self, text: str, incident_id: str) -> None:
        """Tell #incident-response; a failure there must not stop the incident itself."""
        try:
            await self._outbox.say(self._announce_channel, text)
        except SlackApiError as exc:
            log.warning(
                "incident_announcement_failed", incident_id=incident_id, error=exc.response.get("error")
            )

    async def refresh(self, incident: Incident, *, open_approvals: int = 0) -> None:
        """Redraw the topic and every copy of the card after a change: the card posted at declaration
        and each `/incident status` copy tell the same truth (a resolved card has no buttons)."""
        await self._set_topic(incident)
        if not incident.channel_id:
            return
        text, blocks = render.card_text(incident), render.card(incident, open_approvals=open_approvals)
        for ts in dict.fromkeys([incident.card_ts, *incident.card_copies]):
            if ts is None:
                continue
            try:
                await self._client.chat_update(channel=incident.channel_id, ts=ts, text=text, blocks=blocks)
            except SlackApiError as exc:
                log.warning("incident_card_update_failed", ts=ts, error=exc.response.get("error"))

    async def set_role(self, incident: Incident, role: str, user: str, by: str) -> Incident:
        updated = await self.store.set_role(incident.id, role, user)
        if updated is None:
            raise IncidentError("That incident no longer exists.")
        if updated.channel_id:
            await invite(self._client, updated.channel_id, user)
            await self._outbox.say(updated.channel_id, f"<@{user}> is now {ROLE_NAMES[role]}, set by <@{by}>")
        await self.store.add_event(
            incident.id,
            kind="role",
            actor=by,
            source_key=f"role:{role}:{user}:{now_key()}",
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
            source_key=f"severity:{now_key()}",
            text=f"Severity {incident.severity.upper()} → {severity.upper()}",
        )
        await self._announce(render.severity_change(incident, updated, by), incident.id)
        await self.refresh(updated)
        cancelled = await self.timers.replan(updated)
        log.info("incident_timers_replanned", incident_id=incident.id, severity=severity, cancelled=cancelled)
        if severity == "p0":
            await self._page_for_p0(updated, by)
        await self.run_diagnosis(updated, by, self.severities[severity].diagnosis_runbook)
        return updated

    async def _page_for_p0(self, incident: Incident, by: str) -> None:
        """Raising to P0 pages on-call; when it cannot, the channel is told why, in plain words."""
        assert incident.channel_id is not None
        if not self.pager.configured:
            await self._outbox.say(
                incident.channel_id,
                f"📟 {incident.id} is now P0, but on-call was *not* paged: paging is not configured "
                "(set OPSBOT_PAGERDUTY_ROUTING_KEY). Reach on-call another way.",
            )
            return
        result = await self.page(incident, by)
        text = (
            f"📟 {incident.id} is now P0: on-call paged."
            if result.ok
            else f"📟 {incident.id} is now P0, but the page did *not* go out: {escape(result.error or '')}"
        )
        await self._outbox.say(incident.channel_id, text)

    async def post_update(self, incident: Incident, text: str, by: str) -> Incident:
        updated = await self.store.post_update(incident.id, text, None)
        if updated is None:
            raise IncidentError(f"{incident.id} is resolved.")
        message = f"📣 *Update on {incident.id}* from <@{by}>: {escape(text)}"
        assert incident.channel_id is not None
        await self._outbox.say(incident.channel_id, message)
        severity = self.severities[updated.severity]
        if severity.announce_updates:
            summary = (
                f"{severity.emoji} {incident.id} ({updated.severity.upper()}) update: "
                f"{escape(text)} — <#{incident.channel_id}>"
            )
            await self._announce(summary, incident.id)
        await self.store.add_event(
            incident.id, kind="update", actor=by, source_key=f"update:{now_key()}", text=f"Update: {text}"
        )
        await self.refresh(updated)
        return updated

    # --- alerts: the use cases `AlertService` calls (an alert has no asker, a card click has one) ---

    async def open_for_service(self, service: str) -> Incident | None:
        """The most recently declared open incident of `service`, if any."""
        found = [i for i in await self.store.open_incidents() if i.service == service]
        return found[-1] if found else None

    async def declare_for_alert(
        self, *, title: str, severity: str, service: str | None, detected_at: datetime, by: str | None
    ) -> Incident:
        """Declare for an alert — by a route (`by` None: the bot itself declares) or a card's button —
        with the alert's start as "detected" on the timeline (the review's "Incident detected")."""
        user = by or await self._bot_user()
        incident = await self.declare(title=title, severity=severity, user=user, service=service)
        await self.store.add_event(
            incident.id,
            kind="detected",
            at=detected_at,
            actor=None,
            source_key="detected",
            text=f"Detected by alert: {title}",
        )
        await self.run_diagnosis(incident, user)
        return incident

    async def alert_attached(self, incident: Incident, *, text: str, key: str, by: str | None) -> None:
        """An alert joins an open incident: a timeline entry and a line in its channel (once per key)."""
        added = await self.store.add_event(
            incident.id, kind="alert", actor=by, source_key=f"alert:{key}", text=text
        )
        if added and incident.channel_id:
            await self._outbox.say(incident.channel_id, text)

    async def _bot_user(self) -> str:
        response = await self._client.auth_test()
        return str(response["user_id"])

    async def note(self, incident: Incident, text: str, by: str, key: str) -> bool:
        return await self.store.add_event(
            incident.id, kind="note", actor=by, source_key=f"note:{key}", text=f"Note: {text}"
        )

    async def resolve(self, incident: Incident, summary: str, by: str) -> Incident:
        resolved = await self.store.resolve(incident.id, by, summary)
        if resolved is None:
            raise IncidentError(f"{incident.id} is already resolved.")
        cancelled = await self.timers.cancel(incident)
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

    # --- use cases: what `/incident`, the card's buttons and the forms call, one method each ---

    async def in_channel(self, channel: str | None) -> Incident | None:
        return await self.store.in_channel(channel) if channel else None

    async def on_card(self, incident_id: str, channel: str | None) -> Incident:
        """The incident a card's button names, if that card is in its own channel."""
        incident = await self.store.get(incident_id)
        if incident is None or channel is None or incident.channel_id != channel:
            raise IncidentError("That card no longer belongs to an open incident here.")
        if incident.status == "resolved":
            raise IncidentError(f"{incident.id} is resolved; that button does nothing now.")
        return incident

    @staticmethod
    def required(incident: Incident | None, verb: str) -> Incident:
        """The incident of the channel a verb was typed in; there must be one."""
        if incident is None:
            raise IncidentError(
                f"`/incident {verb}` works inside an incident channel. `/incident list` shows them."
            )
        return incident

    async def open_declare_form(self, asker: Asker, severity: str | None, title: str) -> None:
        await self._client.views_open(
            trigger_id=asker.trigger_id,
            view=render.declare_modal(severity, title, json.dumps({"channel": asker.channel})),
        )

    async def declare_and_diagnose(
        self,
        asker: Asker,
        *,
        title: str,
        severity: str,
        service: str | None = None,
        security_sensitive: bool = False,
        symptom: str | None = None,
    ) -> Incident:
        """Declare, then run the symptom's (else the severity's) diagnosis in the new channel."""
        incident = await self.declare(
            title=title,
            severity=severity,
            user=asker.user,
            service=service,
            security_sensitive=security_sensitive,
            symptom=symptom,
        )
        await self.run_diagnosis(incident, asker.user)
        return incident

    async def run_diagnosis(self, incident: Incident, by: str, runbook_id: str | None = None) -> None:
        """A diagnosis runbook — by default the symptom's, else the severity's — posted in the incident
        channel and put on the timeline."""
        if runbook_id is None:
            runbook_id = diagnosis_runbook(self.severities, incident.severity, incident.symptom)
        if runbook_id is None or incident.channel_id is None:
            return
        if not self._diagnoses.knows(runbook_id):
            # Fail closed, visibly: an incident whose diagnosis silently did not run reads as healthy.
            await self._outbox.say(
                incident.channel_id,
                f"⚠️ No diagnosis ran for {incident.id}: the runbook `{runbook_id}` is not in the catalogue. "
                "`/runbook list` shows the ones there are.",
            )
            return
        diagnosis = await self._diagnoses.deliver(
            RunRequest(runbook_id=runbook_id, params={}),
            channel=incident.channel_id,
            asker=Asker(user=by, channel=incident.channel_id),
        )
        await self.store.add_event(
            incident.id,
            kind="diagnosis",
            actor=by,
            source_key=f"diagnosis:{diagnosis.run_id}",
            text=f"Diagnosis {runbook_id}: {STATUS_WORD[diagnosis.overall]}",
            details={"run_id": diagnosis.run_id, "overall": diagnosis.overall},
        )

    async def list_open(self, asker: Asker) -> None:
        await tell(self._client, asker, render.list_text(await self.store.open_incidents()))

    async def show_card(self, incident: Incident, asker: Asker) -> None:
        """`/incident status`: the card again, with elapsed time and open approvals; the copy is
        remembered, so every later change redraws it too."""
        assert incident.channel_id is not None
        ts = await post_message(
            self._client,
            incident.channel_id,
            render.card_text(incident),
            render.card(incident, open_approvals=await self._open_approvals(incident.channel_id)),
        )
        await self.store.add_card_copy(incident.id, ts)

    async def show_timeline(self, incident: Incident, asker: Asker) -> None:
        entries = await self.store.entries(incident)
        names = await user_names(self._client, timeline_people(entries))
        await tell(self._client, asker, render.timeline_text(incident, entries, names))

    async def add_note(self, incident: Incident, text: str, asker: Asker) -> None:
        await self.note(
            incident, text, asker.user, key=asker.trigger_id or render.elapsed(incident.declared_at)
        )
        await tell(self._client, asker, "Added to the timeline.")

    async def record_root_cause(self, incident: Incident, text: str, by: str) -> Incident:
        """However it is given (`/incident root-cause`, the resolve form), the root cause is stored
        and its time lands on the timeline, so the review can say when it was identified."""
        if text == incident.root_cause:
            return incident
        updated = await self.store.set_root_cause(incident.id, text)
        if updated is None:
            raise IncidentError("That incident no longer exists.")
        # The first root cause keeps the key the review looks for; a revision is an entry of its own.
        key = "root_cause" if incident.root_cause is None else f"root_cause:{now_key()}"
        await self.store.add_event(
            incident.id, kind="root_cause", actor=by, source_key=key, text=f"Root cause: {text}"
        )
        return updated

    async def set_root_cause(self, incident: Incident, text: str, asker: Asker) -> None:
        await self.record_root_cause(incident, text, asker.user)
        await tell(self._client, asker, "Root cause recorded.")

    async def assign_role(self, incident: Incident, role: str, user: str, by: str) -> Incident:
        """A role for someone else: only an active account of this workspace."""
        try:
            response = await self._client.users_info(user=user)
        except SlackApiError:
            raise IncidentError(
                "I don't know that person. Usage: `/incident role <commander|comms|scribe> @person`."
            ) from None
        if response["user"].get("deleted"):
            raise IncidentError("That account is deactivated.")
        return await self.set_role(incident, role, user, by)

    async def resolve_or_ask(self, incident: Incident, summary: str, asker: Asker) -> None:
        """Resolve when the summary and root cause are known; otherwise ask for them in a form."""
        if summary and incident.root_cause:
            await self.resolve(incident, summary, asker.user)
            return
        if asker.trigger_id is None:
            raise IncidentError("Give a summary and record the root cause: `/incident root-cause <text>`.")
        await self._client.views_open(
            trigger_id=asker.trigger_id,
            view=render.resolve_modal(
                json.dumps({"incident": incident.id, "channel": incident.channel_id}),
                summary=summary,
                root_cause=incident.root_cause or await self._marked_root_cause(incident),
            ),
        )

    async def _marked_root_cause(self, incident: Incident) -> str:
        """The latest message of the channel marked with the root-cause reaction (🎯), or nothing."""
        if incident.channel_id is None:
            return ""
        try:
            messages = await read_channel(self._client, incident.channel_id)
        except SlackApiError as exc:
            log.warning("incident_history_failed", incident_id=incident.id, error=exc.response.get("error"))
            return ""
        marked = [m for m in messages if self._root_cause_reaction in m.reactions and m.text.strip()]
        return marked[-1].text.strip()[:2000] if marked else ""

    async def resolve_from_form(self, incident_id: str, summary: str, root_cause: str, by: str) -> None:
        """The resolve form's two answers: the root cause is recorded (its own timeline entry, before
        `resolved`), then the incident is resolved with the summary."""
        incident = await self.store.get(incident_id)
        if incident is None or incident.status == "resolved":
            return
        incident = await self.record_root_cause(incident, root_cause, by)
        await self.resolve(incident, summary, by)

    async def open_update_form(self, incident: Incident, asker: Asker) -> None:
        await self._client.views_open(
            trigger_id=asker.trigger_id,
            view=render.text_modal(
                render.UPDATE_VIEW,
                "Post an update",
                "What is the status now?",
                json.dumps({"incident": incident.id, "channel": incident.channel_id}),
                "Post",
            ),
        )

    async def update_from_form(self, incident_id: str, text: str, by: str) -> None:
        incident = await self.store.get(incident_id)
        if incident is not None:
            await self.post_update(incident, text, by)

    async def page_on_call(self, incident: Incident, asker: Asker) -> None:
        if not self.pager.configured:
            raise IncidentError(
                "Paging is not configured: set OPSBOT_PAGERDUTY_ROUTING_KEY "
                "(a PagerDuty Events API v2 integration key) and restart opsbot."
            )
        result = await self.page(incident, asker.user)
        if not result.ok:
            raise IncidentError(f"The page did not go out: {result.error}")
        assert incident.channel_id is not None
        await self._client.chat_postMessage(
            channel=incident.channel_id, text=f"📟 <@{asker.user}> paged on-call for {incident.id}."
        )

    async def snooze_reminder(self, incident: Incident, minutes: int, asker: Asker) -> None:
        await self.timers.snooze(incident, minutes, asker.user)
        await tell(self._client, asker, f"Reminder snoozed for {minutes} minutes.")

"""Alerts in: a notification becomes one card per alert group, kept current, diagnosed before anyone
types, and — when its route says so — an incident; plus what the card's buttons do.

`receive` does everything that must happen once under the group's row lock (`AlertStore.locked_for`):
store the alerts, decide what changed, claim the diagnosis and an automatic declare, note the
changes for the card's thread. The card is drawn after the commit by `AlertCards`
(`bot.services.alert_cards`), from the group's newest state whenever Slack's budget allows, so a
notification never holds the lock (or Alertmanager's request) while Slack paces the bot. The slow
work it claimed (the diagnosis, declaring) runs after the card exists.

An alert never changes anything by itself: its diagnosis is read-only, and the actions the
diagnosis offers still need a person to request them and another to approve.

Metrics: the receiver counts `received`/`refused`; this service counts `routed` (every notification
it handles) and `duplicate` (one that changed nothing), and observes the card latency.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from slack_sdk.errors import SlackApiError

from bot.alerts.model import Alert, Notification, RouteDecision
from bot.alerts.routes import AlertRoutes
from bot.alerts.silences import PostableSilence, SilenceError, Silences, exact_matchers
from bot.alerts.store import AlertGroup, AlertStore, LockedGroup, StoredAlert
from bot.errors import UserError
from bot.incidents.store import Incident
from bot.logs import get_logger
from bot.metrics import Metrics
from bot.mrkdwn import clip, escape
from bot.render import alert as render
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.commands import RunRequest
from bot.runbooks.params import ParamError, bind_params
from bot.services.alert_cards import AlertCards
from bot.services.diagnoses import DiagnosisService
from bot.services.incidents import IncidentService
from bot.slack.asker import Asker, tell
from bot.slack.client import InstrumentedWebClient
from bot.slack.priority import Priority, serving

log = get_logger(__name__)

SEVERITY_RANK = {"p0": 0, "p1": 1, "p2": 2, "p3": 3}
DEFAULT_SEVERITY = "p2"  # a declared incident needs one; a route without a severity map gets this
SILENCE_HOURS = {"1h": 1, "4h": 4, "resolved": 24 * 7}  # "until resolved" is expired when it resolves
# How long a notification that needs the card (to diagnose in its thread) waits for it to be posted.
CARD_PATIENCE_S = 150.0
Outcome = Literal["new", "updated", "duplicate"]
IncidentAction = Literal["declared", "attached", "offered", "none"]


class AlertError(UserError):
    """A card button that cannot do what it says now; the message says why."""


class ReceiveResult(BaseModel):
    group_id: int
    group_key: str
    outcome: Outcome
    card_ts: str | None
    diagnosed: bool
    incident_action: IncidentAction
    incident_id: str | None = None


@dataclass
class Changes:
    """What one notification changed in its group."""

    new: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    refired: list[Alert] = field(default_factory=list)
    stored: bool = False  # anything written, even a changed annotation
    group_resolved: bool = False
    group_refired: bool = False


@dataclass
class Plan:
    """The slow work a notification claimed under the lock, done after the commit."""

    diagnose: bool = False
    declare: bool = False
    attach_to: Incident | None = None
    expire_silence: str | None = None


class AlertService:
    def __init__(
        self,
        store: AlertStore,
        routes: AlertRoutes,
        catalogue: Catalogue,
        client: InstrumentedWebClient,
        diagnoses: DiagnosisService,
        incidents: IncidentService,
        metrics: Metrics,
        *,
        silences: Silences | None = None,
        flap_posts: int = 5,
        flap_window_s: float = 600.0,
        settle_seconds: float = 45.0,
        card_wait_seconds: float = 2.0,
    ) -> None:
        self.store = store
        self._routes = routes
        self._catalogue = catalogue
        self._client = client
        self._diagnoses = diagnoses
        self._incidents = incidents
        self._metrics = metrics
        self._silences = silences
        self._card_wait = card_wait_seconds
        self.cards = AlertCards(
            store,
            client,
            metrics,
            self._view,
            settle_seconds=settle_seconds,
            flap_posts=flap_posts,
            flap_window_s=flap_window_s,
        )

    # --- receiving -----------------------------------------------------------------------------

    async def receive(self, notification: Notification) -> ReceiveResult:
        """Store the notification in its group and have the card brought up to date.

        Returns once the card shows this notification (or after `card_wait_seconds`, while Slack's
        budget keeps it waiting; the card is drawn all the same). Work that goes in the card's
        thread (a diagnosis, an incident link) waits for the card to exist.
        """
        with serving(Priority.BULK):
            return await self._receive(notification)

    async def _receive(self, notification: Notification) -> ReceiveResult:
        started = time.monotonic()
        decision = self._routes.decide(notification, self._catalogue)
        async with self.store.locked_for(notification, decision) as locked:
            created = locked.created
            changes = await self._apply(locked, notification, decision)
            plan = await self._plan(locked, decision, changes)
            await self._note_changes(locked, changes)
            group = locked.group
        self.cards.paint(group.id)
        needs_card = plan.diagnose or plan.declare or plan.attach_to is not None
        if needs_card:
            group = await self.cards.until_posted(group.id, CARD_PATIENCE_S) or group
        drawn = await self.cards.until_drawn(group.id, group.version, self._card_wait)
        group = drawn or group
        self._metrics.alert_card_latency.observe(time.monotonic() - started)
        outcome: Outcome = "new" if created else ("updated" if changes.stored else "duplicate")
        self._metrics.alert_notifications.labels(notification.source, "routed").inc()
        if outcome == "duplicate":
            self._metrics.alert_notifications.labels(notification.source, "duplicate").inc()
        for problem in decision.problems:
            log.warning("alert_route_problem", group_id=group.id, problem=problem)
        incident = await self._follow_up(group, plan, decision)
        action: IncidentAction = "none"
        if incident is not None:
            action = "declared" if plan.declare else "attached"
        elif group.attach_offer or (group.declare == "offer" and group.incident_id is None):
            action = "offered"
        return ReceiveResult(
            group_id=group.id,
            group_key=group.group_key,
            outcome=outcome,
            card_ts=group.card_ts,
            diagnosed=plan.diagnose,
            incident_action=action,
            incident_id=incident.id if incident else group.incident_id,
        )

    async def _apply(
        self, locked: LockedGroup, notification: Notification, decision: RouteDecision
    ) -> Changes:
        """Store each alert that changed; note the group's own transitions."""
        changes = Changes()
        stored = {alert.fingerprint: alert for alert in await locked.alerts()}
        for alert in notification.alerts:
            before = stored.get(alert.fingerprint)
            if before is not None and _stale(before, alert):
                continue
            if before is not None and _same(before, alert):
                continue
            await locked.put_alert(alert)
            changes.stored = True
            if before is None and not locked.created and alert.status == "firing":
                changes.new.append(alert)
            elif before is not None and before.status != alert.status:
                (changes.resolved if alert.status == "resolved" else changes.refired).append(alert)
        if changes.stored:
            await self._update_group(locked, notification, decision, changes)
        return changes

    async def _update_group(
        self, locked: LockedGroup, notification: Notification, decision: RouteDecision, changes: Changes
    ) -> None:
        alerts = await locked.alerts()
        firing = [a for a in alerts if a.status == "firing"]
        status = "firing" if firing else "resolved"
        before = locked.group.status
        changes.group_resolved = before == "firing" and status == "resolved" and not locked.created
        changes.group_refired = before == "resolved" and status == "firing"
        now = datetime.now(UTC)
        fields: dict[str, object] = {
            "status": status,
            # The route can change with the labels (a `severity="critical"` route may declare).
            "declare": decision.declare,
            "last_change": now,
            "starts_at": min(a.starts_at for a in (firing or alerts)),
            "common_labels": notification.common_labels or locked.group.common_labels,
            "common_annotations": notification.common_annotations or locked.group.common_annotations,
        }
        if status == "resolved":
            fields["resolved_at"] = max((a.ends_at for a in alerts if a.ends_at), default=now)
        elif changes.group_refired:
            fields["resolved_at"] = None
        severity = self._severity(notification, decision, firing)
        if severity is not None:
            fields["severity"] = severity
        await locked.update(**fields)
        for alert in changes.new:
            await locked.note("new", f"New alert {alert.fingerprint}", fingerprint=alert.fingerprint)
        if changes.group_resolved:
            await locked.note("resolved", render.resolved_line(locked.group))

    def _severity(
        self, notification: Notification, decision: RouteDecision, firing: list[StoredAlert]
    ) -> str | None:
        """The most severe incident severity the route maps the firing alerts' `severity` labels to."""
        _, route = self._routes.route_for(notification)
        mapped = [route.severity_map.get(a.labels.get("severity", "").strip().lower()) for a in firing]
        known = [s for s in mapped if s is not None]
        return min(known, key=SEVERITY_RANK.__getitem__) if known else decision.severity

    async def _plan(self, locked: LockedGroup, decision: RouteDecision, changes: Changes) -> Plan:
        """Claim, under the lock, the diagnosis and the incident work this notification calls for."""
        plan = Plan()
        group = locked.group
        if group.status == "resolved":
            if changes.group_resolved and group.silence_id and group.silence_until_resolved:
                plan.expire_silence = group.silence_id
                await locked.update(
                    silence_id=None, silenced_by=None, silence_until=None, silence_until_resolved=False
                )
            return plan
        if group.runbook_id and (not group.diagnosed or _escalated(group.severity, group.diagnosed_severity)):
            plan.diagnose = True
            await locked.update(diagnosed=True, diagnosed_severity=group.severity)
        if group.incident_id is not None:
            return plan
        open_incident = await self._incidents.open_for_service(group.service) if group.service else None
        if open_incident is not None and decision.attach:
            plan.attach_to = open_incident
            await locked.update(
                incident_id=open_incident.id, incident_channel=open_incident.channel_id, attach_offer=None
            )
        elif open_incident is not None:
            await locked.update(attach_offer=open_incident.id)
        elif group.declare == "auto" and group.acked_by is None and not group.declare_claimed:
            plan.declare = True
            await locked.update(declare_claimed=True)
        return plan

    async def _note_changes(self, locked: LockedGroup, changes: Changes) -> None:
        """What changed, kept for the card's thread: posted merged once the group settles."""
        lines = _change_lines(locked.group, changes)
        if lines:
            await locked.note("change", "\n".join(lines), pending=True)

    def _view(self, group: AlertGroup, alerts: list[StoredAlert]) -> render.AlertCard:
        return render.AlertCard(
            group=group,
            firing=sum(1 for a in alerts if a.status == "firing"),
            resolved=sum(1 for a in alerts if a.status == "resolved"),
            silence_offered=self._silence_offered(group),
        )

    async def _version(self, group_id: int) -> int:
        version, _ = await self.store.version(group_id)
        return version

    async def _redraw(self, group_id: int, version: int) -> None:
        """After a person's change: the card drawn at their priority, waited for a moment."""
        self.cards.paint(group_id)
        await self.cards.until_drawn(group_id, version, self._card_wait)

    def _silence_offered(self, group: AlertGroup) -> bool:
        return self._silences is not None and group.source == "alertmanager"

    # --- after the commit: the claimed diagnosis and incident work --------------------------

    async def _follow_up(self, group: AlertGroup, plan: Plan, decision: RouteDecision) -> Incident | None:
        if plan.expire_silence and self._silences is not None:
            try:
                await self._silences.expire(plan.expire_silence)
            except SilenceError as exc:
                log.warning("silence_not_expired_on_resolve", group_id=group.id, error=str(exc))
        if plan.diagnose:
            await self._diagnose(group, decision)
        if plan.attach_to is not None:
            await self._announce_link(group, plan.attach_to, by=None, verb="attached")
            return plan.attach_to
        if plan.declare:
            try:
                return await self._declare(group, by=None)
            except Exception as exc:
                log.exception("alert_declare_failed", group_id=group.id)
                await self._reply(
                    group, f"⚠️ Could not declare an incident automatically: {type(exc).__name__}"
                )
        return None

    async def _diagnose(self, group: AlertGroup, decision: RouteDecision) -> None:
        """The routed runbook's diagnosis, in the card's thread, as `/db connections` would post it."""
        runbook = self._catalogue.get(group.runbook_id or "")
        if runbook is None or group.channel_id is None:
            return
        try:
            params = bind_params(runbook.params, [f"{k}={v}" for k, v in decision.params.items()])
        except ParamError as exc:
            await self._reply(
                group, f"⚠️ No diagnosis: the alert's labels do not fit `{runbook.id}`: {escape(str(exc))}"
            )
            return
        try:
            await self._diagnoses.deliver(
                RunRequest(runbook_id=runbook.id, params=params),
                channel=group.channel_id,
                asker=None,
                thread_ts=group.card_ts,
                heading="Alert: ",
            )
        except UserError as exc:
            await self._reply(group, f"⚠️ No diagnosis: {exc.message}")

    async def _declare(self, group: AlertGroup, *, by: str | None) -> Incident:
        incident = await self._incidents.declare_for_alert(
            title=render.title(group),
            severity=group.severity or DEFAULT_SEVERITY,
            service=group.service,
            detected_at=group.starts_at or group.first_seen,
            by=by,
        )
        async with self.store.locked(group.id) as locked:
            if locked is not None:
                await locked.update(
                    incident_id=incident.id, incident_channel=incident.channel_id, attach_offer=None
                )
                await locked.note("declared", f"Declared {incident.id}", actor=by)
        await self._redraw(group.id, await self._version(group.id))
        await self._announce_link(group, incident, by=by, verb="declared")
        return incident

    async def _announce_link(
        self, group: AlertGroup, incident: Incident, *, by: str | None, verb: str
    ) -> None:
        """The incident's timeline and channel link the card; the card's thread links the incident."""
        card = await self._permalink(group)
        name = escape(render.title(group))
        shown = f"<{card}|{name}>" if card else name
        await self._incidents.alert_attached(
            incident, text=f"🔔 Alert {verb}: {shown}", key=f"group:{group.id}", by=by
        )
        where = f" — <#{incident.channel_id}>" if incident.channel_id else ""
        await self._reply(group, f"🚨 {verb.capitalize()} *{incident.id}*{where}")

    async def _permalink(self, group: AlertGroup) -> str | None:
        if group.channel_id is None or group.card_ts is None:
            return None
        try:
            response = await self._client.chat_getPermalink(
                channel=group.channel_id, message_ts=group.card_ts
            )
        except SlackApiError:
            return None
        link = str(response.get("permalink") or "")
        return link if link.startswith("https://") and "|" not in link and ">" not in link else None

    async def _reply(self, group: AlertGroup, text: str) -> None:
        if group.channel_id is None or group.card_ts is None:
            return
        try:
            await self._client.chat_postMessage(channel=group.channel_id, thread_ts=group.card_ts, text=text)
        except SlackApiError as exc:
            log.warning("alert_reply_failed", group_id=group.id, error=exc.response.get("error"))

    # --- the card's buttons: one use case each ---------------------------------------------

    async def acknowledge(self, group_id: int, asker: Asker) -> None:
        """Who has it and since when, on the card; no automatic declare after this."""
        async with self.store.locked(group_id) as found:
            locked = _known(found)
            group = locked.group
            if group.acked_by:
                raise AlertError(f"<@{group.acked_by}> already acknowledged this alert.")
            await locked.update(acked_by=asker.user, acked_at=datetime.now(UTC))
            await locked.note("acked", "Acknowledged", actor=asker.user)
            version = locked.group.version
        await self._redraw(group_id, version)
        await self._reply(group, f"👀 <@{asker.user}> acknowledged")
        await tell(
            self._client,
            asker,
            "👀 Acknowledged: the card says it is yours, and no incident will be declared automatically.",
        )

    async def declare_from_card(self, group_id: int, asker: Asker) -> Incident:
        """ "Declare P0": an incident with the route's severity, the alert's start as detected."""
        async with self.store.locked(group_id) as found:
            locked = _known(found)
            group = locked.group
            _require_firing(group)
            if group.incident_id:
                raise AlertError(f"This alert already belongs to *{group.incident_id}*.")
            if group.declare_claimed:
                raise AlertError("An incident is already being declared for this alert.")
            await locked.update(declare_claimed=True)
        await tell(
            self._client, asker, f"Declaring {(group.severity or DEFAULT_SEVERITY).upper()} for this alert…"
        )
        try:
            return await self._declare(group, by=asker.user)
        except Exception:
            async with self.store.locked(group_id) as again:
                if again is not None:
                    await again.update(declare_claimed=False)
            raise

    async def attach(self, group_id: int, asker: Asker) -> Incident:
        """ "Attach to INC-…": the open incident of the group's service gets this alert."""
        async with self.store.locked(group_id) as found:
            locked = _known(found)
            group = locked.group
            if group.incident_id:
                raise AlertError(f"This alert already belongs to *{group.incident_id}*.")
            incident = await self._incidents.open_for_service(group.service) if group.service else None
            if incident is not None:
                await locked.update(
                    incident_id=incident.id, incident_channel=incident.channel_id, attach_offer=None
                )
                await locked.note("attached", f"Attached to {incident.id}", actor=asker.user)
            else:
                await locked.update(attach_offer=None)
            version = locked.group.version
        await self._redraw(group_id, version)
        if incident is None:
            raise AlertError("There is no open incident for this alert's service any more.")
        await self._announce_link(group, incident, by=asker.user, verb="attached")
        await tell(self._client, asker, f"Attached to *{incident.id}*.")
        return incident

    async def silence(self, group_id: int, choice: str, asker: Asker) -> str:
        """A real Alertmanager silence on the group's labels; returns its id."""
        if choice not in SILENCE_HOURS:
            raise AlertError("Silence for 1 h, 4 h or until resolved.")
        async with self.store.locked(group_id) as found:
            locked = _known(found)
            group = locked.group
            silences = self._require_silences(group)
            _require_firing(group)
            if group.silence_id:
                raise AlertError("This alert is already silenced; expire that silence first.")
            silence = await self._postable(group, choice, asker)
            try:
                silence_id = await silences.create(silence)
            except SilenceError as exc:
                raise AlertError(f"Alertmanager did not create the silence: {exc}") from None
            await locked.update(
                silence_id=silence_id,
                silenced_by=silence.createdBy,
                silence_until=silence.endsAt,
                silence_until_resolved=choice == "resolved",
            )
            await locked.note("silenced", f"Silenced ({choice}) as {silence_id}", actor=asker.user)
            version = locked.group.version
        await self._redraw(group_id, version)
        await self._reply(
            group, f"🔕 <@{asker.user}> silenced this alert ({render.SILENCE_CHOICES[choice].lower()})"
        )
        await tell(self._client, asker, f"🔕 Silenced in Alertmanager (`{silence_id}`).")
        return silence_id

    async def expire_silence(self, group_id: int, asker: Asker) -> None:
        async with self.store.locked(group_id) as found:
            locked = _known(found)
            group = locked.group
            silences = self._require_silences(group)
            if group.silence_id is None:
                raise AlertError("This alert has no silence to expire (it may have been expired already).")
            try:
                await silences.expire(group.silence_id)
            except SilenceError as exc:
                raise AlertError(f"Alertmanager did not expire the silence: {exc}") from None
            await locked.update(
                silence_id=None, silenced_by=None, silence_until=None, silence_until_resolved=False
            )
            await locked.note("unsilenced", f"Expired silence {group.silence_id}", actor=asker.user)
            version = locked.group.version
        await self._redraw(group_id, version)
        await self._reply(group, f"🔔 <@{asker.user}> expired the silence")
        await tell(self._client, asker, "🔔 Silence expired.")

    def _require_silences(self, group: AlertGroup) -> Silences:
        if group.source != "alertmanager":
            raise AlertError(f"Silences are Alertmanager's; this alert came from {group.source}.")
        if self._silences is None:
            raise AlertError("Silencing needs OPSBOT_ALERTMANAGER_URL, and this opsbot has none configured.")
        return self._silences

    async def _postable(self, group: AlertGroup, choice: str, asker: Asker) -> PostableSilence:
        labels = group.group_labels or group.common_labels
        if not labels:
            raise AlertError("This alert group has no labels to silence it by.")
        now = datetime.now(UTC)
        card = await self._permalink(group)
        return PostableSilence(
            matchers=exact_matchers(labels),
            startsAt=now,
            endsAt=now + timedelta(hours=SILENCE_HOURS[choice]),
            createdBy=await self._name(asker.user),
            comment=clip(f"From opsbot's alert card: {card or render.title(group)}", 2000),
        )

    async def _name(self, user: str) -> str:
        try:
            person = (await self._client.users_info(user=user)).get("user") or {}
        except SlackApiError:
            return user
        return str(person.get("name") or person.get("real_name") or user)


def _known(locked: LockedGroup | None) -> LockedGroup:
    if locked is None:
        raise AlertError("opsbot no longer knows that alert card; it may come from an older installation.")
    return locked


def _require_firing(group: AlertGroup) -> None:
    if group.status != "firing":
        raise AlertError("This alert has resolved; that button does nothing now.")


def _escalated(severity: str | None, diagnosed: str | None) -> bool:
    """The group's severity rose past the one last diagnosed (warn → crit)."""
    if severity is None or diagnosed is None:
        return False
    return SEVERITY_RANK[severity] < SEVERITY_RANK[diagnosed]


def _stale(before: StoredAlert, alert: Alert) -> bool:
    """A late retry of a firing notification after the same alert (same start) was resolved."""
    return before.status == "resolved" and alert.status == "firing" and before.starts_at == alert.starts_at


def _same(before: StoredAlert, alert: Alert) -> bool:
    return (
        before.status == alert.status
        and before.labels == alert.labels
        and before.annotations == alert.annotations
        and before.starts_at == alert.starts_at
    )


def _change_lines(group: AlertGroup, changes: Changes) -> list[str]:
    common = group.common_labels

    def which(alert: Alert) -> str:
        own = {k: v for k, v in sorted(alert.labels.items()) if common.get(k) != v}
        shown = " ".join(f"`{escape(clip(k, 40))}={escape(clip(v, 80))}`" for k, v in list(own.items())[:4])
        return shown or f"`{escape(alert.fingerprint[:40])}`"

    lines = [f"🔥 New alert: {which(a)}" for a in changes.new]
    lines += [f"🔥 Firing again: {which(a)}" for a in changes.refired]
    if changes.group_resolved:
        lines.append(render.resolved_line(group))
    else:
        lines += [f"✅ Resolved: {which(a)}" for a in changes.resolved]
    return lines

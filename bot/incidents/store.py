"""Incidents and timeline events in PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any, LiteralString

from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from bot.runbooks.model import STATUS_WORD


class Incident(BaseModel):
    id: str
    title: str
    severity: str
    status: str
    service: str | None
    security_sensitive: bool
    channel_id: str | None
    channel_name: str | None
    card_ts: str | None
    commander: str | None
    comms_lead: str | None
    scribe: str | None
    declared_by: str
    declared_at: datetime
    resolved_by: str | None
    resolved_at: datetime | None
    summary: str | None
    root_cause: str | None
    last_update: str | None
    last_update_at: datetime | None
    symptom: str | None = None
    topic: str | None = None
    card_copies: list[str] = []


class TimelineEvent(BaseModel):
    id: int
    incident_id: str
    at: datetime
    kind: str
    actor: str | None
    text: str
    message_ts: str | None
    source_key: str
    details: dict[str, Any]


# One statement per role: the column is never built from input, not even from an allow-list.
SET_ROLE: dict[str, LiteralString] = {
    "commander": "UPDATE incidents SET commander = %s WHERE id = %s RETURNING *",
    "comms": "UPDATE incidents SET comms_lead = %s WHERE id = %s RETURNING *",
    "scribe": "UPDATE incidents SET scribe = %s WHERE id = %s RETURNING *",
}


class IncidentStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def _incident(self, sql: LiteralString, params: tuple[Any, ...]) -> Incident | None:
        async with self._pool.connection() as conn, conn.cursor(row_factory=class_row(Incident)) as cur:
            await cur.execute(sql, params)
            return await cur.fetchone()

    async def create(
        self,
        *,
        title: str,
        severity: str,
        service: str | None,
        security_sensitive: bool,
        declared_by: str,
        channel_id: str,
        channel_name: str,
        symptom: str | None = None,
    ) -> Incident:
        """The incident, already in its channel, and its `declared` timeline entry: both or neither."""
        async with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=class_row(Incident)) as cur,
        ):
            await cur.execute(
                """INSERT INTO incidents (id, title, severity, service, security_sensitive, declared_by,
                                          commander, channel_id, channel_name, symptom)
                   VALUES ('INC-' || to_char(now(), 'YYYY') || '-'
                               || lpad(nextval('incident_seq')::text, 4, '0'),
                           %s, %s, %s, %s, %s, %s, %s, %s, %s)
                   RETURNING *""",
                (
                    title,
                    severity,
                    service,
                    security_sensitive,
                    declared_by,
                    declared_by,
                    channel_id,
                    channel_name,
                    symptom,
                ),
            )
            incident = await cur.fetchone()
            assert incident is not None
            await conn.execute(
                """INSERT INTO timeline_events (incident_id, at, kind, actor, text, source_key, details)
                   VALUES (%s, %s, 'declared', %s, %s, 'declared', '{}')""",
                (incident.id, incident.declared_at, declared_by, f"Declared {severity.upper()}: {title}"),
            )
        return incident

    async def get(self, incident_id: str) -> Incident | None:
        return await self._incident("SELECT * FROM incidents WHERE id = %s", (incident_id,))

    async def in_channel(self, channel_id: str) -> Incident | None:
        return await self._incident("SELECT * FROM incidents WHERE channel_id = %s", (channel_id,))

    async def open_incidents(self) -> list[Incident]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=class_row(Incident)) as cur:
            await cur.execute("SELECT * FROM incidents WHERE status <> 'resolved' ORDER BY declared_at")
            return await cur.fetchall()

    async def attach_card(self, incident_id: str, ts: str) -> Incident | None:
        return await self._incident(
            "UPDATE incidents SET card_ts = %s WHERE id = %s RETURNING *", (ts, incident_id)
        )

    async def add_card_copy(self, incident_id: str, ts: str) -> Incident | None:
        """Another copy of the card (`/incident status`), kept in step with the first."""
        return await self._incident(
            """UPDATE incidents SET card_copies = array_append(card_copies, %s)
               WHERE id = %s RETURNING *""",
            (ts, incident_id),
        )

    async def set_topic(self, incident_id: str, topic: str | None) -> bool:
        """Remember `topic` as set; False when it already was (the channel need not be told again)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """UPDATE incidents SET topic = %s
                   WHERE id = %s AND topic IS DISTINCT FROM %s RETURNING id""",
                (topic, incident_id, topic),
            )
            return await cur.fetchone() is not None

    async def set_role(self, incident_id: str, role: str, user: str) -> Incident | None:
        return await self._incident(SET_ROLE[role], (user, incident_id))

    async def set_severity(self, incident_id: str, severity: str) -> Incident | None:
        return await self._incident(
            "UPDATE incidents SET severity = %s WHERE id = %s AND status <> 'resolved' RETURNING *",
            (severity, incident_id),
        )

    async def post_update(self, incident_id: str, text: str, status: str | None) -> Incident | None:
        return await self._incident(
            """UPDATE incidents SET last_update = %s, last_update_at = now(), status = coalesce(%s, status)
               WHERE id = %s AND status <> 'resolved' RETURNING *""",
            (text, status, incident_id),
        )

    async def set_root_cause(self, incident_id: str, text: str) -> Incident | None:
        return await self._incident(
            "UPDATE incidents SET root_cause = %s WHERE id = %s RETURNING *", (text, incident_id)
        )

    async def resolve(self, incident_id: str, user: str, summary: str) -> Incident | None:
        """Open → resolved, once: the WHERE names the state it leaves."""
        return await self._incident(
            """UPDATE incidents SET status = 'resolved', resolved_by = %s, resolved_at = now(), summary = %s
               WHERE id = %s AND status <> 'resolved' RETURNING *""",
            (user, summary, incident_id),
        )

    async def add_event(
        self,
        incident_id: str,
        *,
        kind: str,
        text: str,
        source_key: str,
        actor: str | None = None,
        at: datetime | None = None,
        message_ts: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> bool:
        """Add a timeline entry unless one with the same source key exists; True if added."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """INSERT INTO timeline_events
                       (incident_id, at, kind, actor, text, message_ts, source_key, details)
                   VALUES (%s, coalesce(%s, clock_timestamp()), %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (incident_id, source_key) DO NOTHING RETURNING id""",
                (incident_id, at, kind, actor, text, message_ts, source_key, Jsonb(details or {})),
            )
            return await cur.fetchone() is not None

    async def remove_event(self, incident_id: str, source_key: str) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM timeline_events WHERE incident_id = %s AND source_key = %s RETURNING id",
                (incident_id, source_key),
            )
            return await cur.fetchone() is not None

    async def timeline(self, incident_id: str) -> list[TimelineEvent]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=class_row(TimelineEvent)) as cur:
            await cur.execute(
                "SELECT * FROM timeline_events WHERE incident_id = %s ORDER BY at, id", (incident_id,)
            )
            return await cur.fetchall()

    async def entries(self, incident: Incident) -> list[TimelineEvent]:
        """The timeline as people read it (`/incident timeline`, the review): the stored events plus
        every diagnosis run in the incident's channel, each thing that happened once."""
        events = await self.timeline(incident.id)
        if not incident.channel_id:
            return events
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(
                """SELECT run_id, runbook_id, overall, requested_by, message_ts, started_at
                   FROM diagnosis_runs WHERE channel = %s ORDER BY started_at, id""",
                (incident.channel_id,),
            )
            rows = await cur.fetchall()
        runs = [
            TimelineEvent(
                id=0,
                incident_id=incident.id,
                at=started_at,
                kind="diagnosis",
                actor=requested_by,
                text=f"Diagnosis {runbook_id}: {STATUS_WORD.get(overall, str(overall).upper())}",
                message_ts=message_ts,
                source_key=f"diagnosis:{run_id}",
                details={"run_id": run_id, "overall": overall},
            )
            for run_id, runbook_id, overall, requested_by, message_ts, started_at in rows
        ]
        return merge_timeline(incident.id, events, runs)


def merge_timeline(
    incident_id: str, events: list[TimelineEvent], runs: list[TimelineEvent]
) -> list[TimelineEvent]:
    """Events and diagnosis runs, oldest first, without saying anything twice.

    A run already on the timeline (the severity's automatic diagnosis) is kept as its event; a run
    shared by several askers is one run. A pinned message that is already an entry — the bot's own
    📣 update card or a diagnosis card, pinned or 📌'd — is dropped: same message ts, or the update
    card's text carrying the `update` entry's text.
    """
    seen_runs = {
        str(e.details.get("run_id") or e.source_key.removeprefix("diagnosis:"))
        for e in events
        if e.kind == "diagnosis"
    }
    extra = []
    for run in runs:
        run_id = str(run.details["run_id"])
        if run_id not in seen_runs:
            seen_runs.add(run_id)
            extra.append(run)
    entries = [*events, *extra]
    known_ts = {e.message_ts for e in entries if e.kind != "pinned" and e.message_ts}
    updates = [e.text.removeprefix("Update: ").strip() for e in entries if e.kind == "update"]

    def repeats(event: TimelineEvent) -> bool:
        if event.kind != "pinned":
            return False
        if event.message_ts in known_ts:
            return True
        text = _unescape(event.text)
        return f"Update on {incident_id}" in text and any(u and u in text for u in updates)

    return sorted((e for e in entries if not repeats(e)), key=lambda e: e.at)


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")

"""The append-only, hash-chained audit log: write an event, verify the chain, list recent events
and the events about one request or incident.

Each row's hash covers its content and the previous row's hash, so editing or deleting a row
(which the table's triggers refuse anyway) breaks verification from that row on.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field

from bot.logs import get_logger

log = get_logger(__name__)

GENESIS = "0" * 64
# Serialises appends so each row links to the one truly before it, across replicas.
AUDIT_LOCK_ID = 0x0B5B07_0002


class AuditEvent(BaseModel):
    """One thing that happened: who did what to which subject, where, and how it ended."""

    actor: str = Field(max_length=200)
    action: str = Field(max_length=200)
    outcome: str = Field(max_length=200)
    subject: str | None = Field(None, max_length=200)
    channel: str | None = Field(None, max_length=200)
    details: dict[str, Any] = Field(default_factory=dict)


class AuditRecord(AuditEvent):
    id: int
    at: datetime
    prev_hash: str
    hash: str


def _digest(prev_hash: str, event: AuditEvent, at: datetime) -> str:
    canonical = json.dumps(
        {"prev": prev_hash, "at": at.isoformat(), **event.model_dump(mode="json")},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def append(conn: psycopg.AsyncConnection[Any], event: AuditEvent) -> AuditRecord:
    """Append one event; joins the caller's transaction if one is open."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK_ID,))
        cur = await conn.execute("SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1")
        last = await cur.fetchone()
        prev_hash = str(last[0]) if last else GENESIS
        now = await (await conn.execute("SELECT date_trunc('milliseconds', clock_timestamp())")).fetchone()
        assert now is not None
        at: datetime = now[0]
        digest = _digest(prev_hash, event, at)
        cur = await conn.execute(
            """INSERT INTO audit_events
                   (at, actor, action, subject, channel, outcome, details, prev_hash, hash)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (
                at,
                event.actor,
                event.action,
                event.subject,
                event.channel,
                event.outcome,
                Jsonb(event.details),
                prev_hash,
                digest,
            ),
        )
        row = await cur.fetchone()
        assert row is not None
    log.info("audit", **event.model_dump(exclude={"details"}), audit_id=row[0])
    return AuditRecord(id=row[0], at=at, prev_hash=prev_hash, hash=digest, **event.model_dump())


class ChainReport(BaseModel):
    rows: int
    ok: bool
    first_bad_id: int | None = None
    reason: str | None = None


async def verify(conn: psycopg.AsyncConnection[Any]) -> ChainReport:
    """Walk the chain from the first row; report the first row whose link or hash is wrong."""
    prev = GENESIS
    count = 0
    event_fields = set(AuditEvent.model_fields)
    async with conn.transaction(), conn.cursor(row_factory=dict_row, name="audit_verify") as cur:
        await cur.execute("SELECT * FROM audit_events ORDER BY id")
        async for row in cur:
            count += 1
            record = AuditRecord(**row)
            if record.prev_hash != prev:
                return ChainReport(rows=count, ok=False, first_bad_id=record.id, reason="broken link")
            event = AuditEvent(**record.model_dump(include=event_fields))
            if _digest(prev, event, record.at) != record.hash:
                return ChainReport(rows=count, ok=False, first_bad_id=record.id, reason="content changed")
            prev = record.hash
    return ChainReport(rows=count, ok=True)


async def recent(conn: psycopg.AsyncConnection[Any], limit: int = 50) -> list[AuditRecord]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM audit_events ORDER BY id DESC LIMIT %s", (limit,))
        return [AuditRecord(**row) for row in await cur.fetchall()]


async def about(
    conn: psycopg.AsyncConnection[Any], subject: str, channel: str | None = None, limit: int = 200
) -> list[AuditRecord]:
    """Events whose subject is `subject` (REQ-…, INC-…), and with `channel` every event in that channel
    (an incident's: the requests and decisions made in it), oldest first."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT * FROM (SELECT * FROM audit_events
                   WHERE subject = %s OR (%s::text IS NOT NULL AND channel = %s)
                   ORDER BY id DESC LIMIT %s) AS latest ORDER BY id""",
            (subject, channel, channel, limit),
        )
        return [AuditRecord(**row) for row in await cur.fetchall()]

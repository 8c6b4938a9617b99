"""Alert groups, their alerts and their events in PostgreSQL (migration 0009).

Every change to a group happens inside `GroupStore.locked…`: one transaction holding the group's
row lock. `locked_for` creates the row or locks the existing one in the same statement
(`INSERT … ON CONFLICT DO UPDATE`), so two Alertmanager peers, a retry and two opsbot replicas
delivering the same group queue behind each other: the first posts the card, the others find it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from bot.alerts.model import Alert, Notification, RouteDecision

# The group columns a use case may set: names come from this list, never from input.
SETTABLE = frozenset(
    {
        "channel_id",
        "card_ts",
        "card_hash",
        "status",
        "severity",
        "service",
        "runbook_id",
        "declare",
        "common_labels",
        "common_annotations",
        "last_change",
        "starts_at",
        "resolved_at",
        "acked_by",
        "acked_at",
        "silence_id",
        "silenced_by",
        "silence_until",
        "silence_until_resolved",
        "incident_id",
        "incident_channel",
        "attach_offer",
        "diagnosed",
        "diagnosed_severity",
        "declare_claimed",
        "flapping",
    }
)
_JSON_COLUMNS = frozenset({"common_labels", "common_annotations"})


class AlertGroup(BaseModel):
    id: int
    source: str
    group_key: str
    route: str
    channel: str
    channel_id: str | None
    card_ts: str | None
    card_hash: str | None
    status: str
    severity: str | None
    service: str | None
    runbook_id: str | None
    declare: str
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    first_seen: datetime
    last_seen: datetime
    last_change: datetime
    starts_at: datetime | None
    resolved_at: datetime | None
    acked_by: str | None
    acked_at: datetime | None
    silence_id: str | None
    silenced_by: str | None
    silence_until: datetime | None
    silence_until_resolved: bool
    incident_id: str | None
    incident_channel: str | None
    attach_offer: str | None
    diagnosed: bool
    diagnosed_severity: str | None
    declare_claimed: bool
    flapping: bool
    # Only `locked_for` reads it: whether its upsert inserted the row (PostgreSQL's xmax = 0).
    created: bool = False


class StoredAlert(BaseModel):
    group_id: int
    fingerprint: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str | None
    first_seen: datetime
    last_seen: datetime


class LockedGroup:
    """One group under its row lock, inside one transaction: read it, change it, note events."""

    def __init__(self, conn: AsyncConnection[Any], group: AlertGroup, *, created: bool) -> None:
        self.conn = conn
        self.group = group
        self.created = created

    async def alerts(self) -> list[StoredAlert]:
        async with self.conn.cursor(row_factory=class_row(StoredAlert)) as cur:
            await cur.execute(
                "SELECT * FROM alerts WHERE group_id = %s ORDER BY starts_at, fingerprint", (self.group.id,)
            )
            return await cur.fetchall()

    async def put_alert(self, alert: Alert) -> None:
        await self.conn.execute(
            """INSERT INTO alerts (group_id, fingerprint, status, labels, annotations, starts_at, ends_at,
                                   generator_url)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (group_id, fingerprint) DO UPDATE
               SET status = excluded.status, labels = excluded.labels, annotations = excluded.annotations,
                   starts_at = excluded.starts_at, ends_at = excluded.ends_at,
                   generator_url = excluded.generator_url, last_seen = now()""",
            (
                self.group.id,
                alert.fingerprint,
                alert.status,
                Jsonb(alert.labels),
                Jsonb(alert.annotations),
                alert.starts_at,
                alert.ends_at,
                alert.generator_url,
            ),
        )

    async def update(self, **fields: Any) -> AlertGroup:
        """Set group columns (names from `SETTABLE` only); the locked copy is refreshed."""
        if not fields:
            return self.group
        unknown = set(fields) - SETTABLE
        if unknown:
            raise ValueError(f"not settable on an alert group: {sorted(unknown)}")
        assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(name)) for name in fields)
        values = [Jsonb(v) if name in _JSON_COLUMNS else v for name, v in fields.items()]
        query = sql.SQL("UPDATE alert_groups SET {} WHERE id = %s RETURNING *").format(assignments)
        async with self.conn.cursor(row_factory=class_row(AlertGroup)) as cur:
            await cur.execute(query, (*values, self.group.id))
            updated = await cur.fetchone()
        assert updated is not None
        self.group = updated
        return updated

    async def note(
        self,
        kind: str,
        text: str,
        *,
        fingerprint: str | None = None,
        actor: str | None = None,
        posted: bool = False,
    ) -> None:
        await self.conn.execute(
            """INSERT INTO alert_events (group_id, kind, fingerprint, actor, text, posted)
               VALUES (%s, %s, %s, %s, %s, %s)""",
            (self.group.id, kind, fingerprint, actor, text, posted),
        )

    async def posts_since(self, seconds: float) -> int:
        """Thread replies posted for this group in the last `seconds` (the flapping budget)."""
        cur = await self.conn.execute(
            """SELECT count(*) FROM alert_events
               WHERE group_id = %s AND posted AND at > clock_timestamp() - make_interval(secs => %s)""",
            (self.group.id, seconds),
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0


class AlertStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def locked_for(
        self, notification: Notification, decision: RouteDecision
    ) -> AsyncIterator[LockedGroup]:
        """The notification's group, created if new, locked until the block ends (then committed)."""
        async with self._pool.connection() as conn, conn.transaction():
            async with conn.cursor(row_factory=class_row(AlertGroup)) as cur:
                await cur.execute(
                    """INSERT INTO alert_groups (source, group_key, route, channel, status, severity, service,
                                                runbook_id, declare, group_labels, common_labels,
                                                common_annotations)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                       ON CONFLICT (source, group_key) DO UPDATE SET last_seen = now()
                       RETURNING *, (xmax = 0) AS created""",
                    _new_group(notification, decision),
                )
                row = await cur.fetchone()
            assert row is not None
            yield LockedGroup(conn, row, created=row.created)

    @asynccontextmanager
    async def locked(self, group_id: int) -> AsyncIterator[LockedGroup | None]:
        """An existing group, locked until the block ends; None when there is no such group."""
        async with self._pool.connection() as conn, conn.transaction():
            async with conn.cursor(row_factory=class_row(AlertGroup)) as cur:
                await cur.execute("SELECT * FROM alert_groups WHERE id = %s FOR UPDATE", (group_id,))
                row = await cur.fetchone()
            yield LockedGroup(conn, row, created=False) if row is not None else None

    async def get(self, group_id: int) -> AlertGroup | None:
        async with self._pool.connection() as conn, conn.cursor(row_factory=class_row(AlertGroup)) as cur:
            await cur.execute("SELECT * FROM alert_groups WHERE id = %s", (group_id,))
            return await cur.fetchone()

    async def events(self, group_id: int) -> list[tuple[str, str, bool]]:
        """(kind, text, posted) of a group's events, oldest first."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT kind, text, posted FROM alert_events WHERE group_id = %s ORDER BY at, id", (group_id,)
            )
            return [(str(k), str(t), bool(p)) for k, t, p in await cur.fetchall()]


def _new_group(notification: Notification, decision: RouteDecision) -> tuple[Any, ...]:
    return (
        notification.source,
        notification.group_key,
        decision.route,
        decision.channel,
        notification.status,
        decision.severity,
        decision.service,
        decision.runbook_id,
        decision.declare,
        Jsonb(notification.group_labels),
        Jsonb(notification.common_labels),
        Jsonb(notification.common_annotations),
    )

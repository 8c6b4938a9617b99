"""Alert groups, their alerts and their events in PostgreSQL (migrations 0009 and 0010).

Every change to a group happens inside `GroupStore.locked…`: one transaction holding the group's
row lock. `locked_for` creates the row or locks the existing one in the same statement
(`INSERT … ON CONFLICT DO UPDATE`), so two Alertmanager peers, a retry and two opsbot replicas
delivering the same group queue behind each other. Every change bumps the group's `version`.

The card is drawn outside that lock (Slack's budget may keep it waiting), under a short lease
instead (`claim_paint` … `painted`): one replica draws a group's card at a time, and it records
which version it drew.
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
    version: int = 1
    drawn_version: int = 0
    card_claimed: bool = False
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
        query = sql.SQL("UPDATE alert_groups SET {}, version = version + 1 WHERE id = %s RETURNING *").format(
            assignments
        )
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
        pending: bool = False,
    ) -> None:
        """Record an event; `pending` ones wait to be posted in the card's thread, merged."""
        await self.conn.execute(
            """INSERT INTO alert_events (group_id, kind, fingerprint, actor, text, posted, pending)
               VALUES (%s, %s, %s, %s, %s, %s, %s)""",
            (self.group.id, kind, fingerprint, actor, text, posted, pending),
        )
        if pending:
            await self.conn.execute(
                "UPDATE alert_groups SET version = version + 1 WHERE id = %s", (self.group.id,)
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

    # --- the card painter's side: a lease per group, never the row lock ---------------------

    async def claim_paint(self, group_id: int, lease_seconds: float) -> AlertGroup | None:
        """The group with a paint lease for the caller, or None while another painter holds one."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=class_row(AlertGroup)) as cur:
            await cur.execute(
                """UPDATE alert_groups SET paint_lease = clock_timestamp() + make_interval(secs => %s)
                   WHERE id = %s AND (paint_lease IS NULL OR paint_lease < clock_timestamp())
                   RETURNING *""",
                (lease_seconds, group_id),
            )
            return await cur.fetchone()

    async def claim_card(self, group_id: int) -> None:
        """Note that the first card is being posted, before posting it (a later painter looks first)."""
        async with self._pool.connection() as conn:
            await conn.execute("UPDATE alert_groups SET card_claimed = true WHERE id = %s", (group_id,))

    async def painted(self, group_id: int, version: int, **card: str | None) -> None:
        """Record the version drawn (and the card's channel, ts or hash) and give up the lease."""
        names = [name for name in ("channel_id", "card_ts", "card_hash") if name in card]
        assignments = [sql.SQL("{} = %s").format(sql.Identifier(name)) for name in names]
        query = sql.SQL(
            "UPDATE alert_groups SET {}drawn_version = greatest(drawn_version, %s), paint_lease = NULL "
            "WHERE id = %s"
        ).format(sql.SQL("").join(a + sql.SQL(", ") for a in assignments))
        async with self._pool.connection() as conn:
            await conn.execute(query, (*(card[n] for n in names), version, group_id))

    async def renew_paint(self, group_id: int, lease_seconds: float) -> None:
        """A living painter's lease, extended while its calls wait for Slack's budget."""
        async with self._pool.connection() as conn:
            await conn.execute(
                """UPDATE alert_groups SET paint_lease = clock_timestamp() + make_interval(secs => %s)
                   WHERE id = %s AND paint_lease IS NOT NULL""",
                (lease_seconds, group_id),
            )

    async def release_paint(self, group_id: int) -> None:
        async with self._pool.connection() as conn:
            await conn.execute("UPDATE alert_groups SET paint_lease = NULL WHERE id = %s", (group_id,))

    async def alerts_of(self, group_id: int) -> list[StoredAlert]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=class_row(StoredAlert)) as cur:
            await cur.execute(
                "SELECT * FROM alerts WHERE group_id = %s ORDER BY starts_at, fingerprint", (group_id,)
            )
            return await cur.fetchall()

    async def version(self, group_id: int) -> tuple[int, int]:
        """(version, drawn_version) of a group now."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT version, drawn_version FROM alert_groups WHERE id = %s", (group_id,)
            )
            row = await cur.fetchone()
            return (int(row[0]), int(row[1])) if row else (0, 0)

    async def pending_changes(self, group_id: int) -> list[tuple[int, str, datetime]]:
        """(id, text, at) of the thread replies still waiting, oldest first."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, text, at FROM alert_events WHERE group_id = %s AND pending ORDER BY at, id",
                (group_id,),
            )
            return [(int(i), str(t), a) for i, t, a in await cur.fetchall()]

    async def mark_posted(self, event_ids: list[int], *, posted: bool) -> None:
        """The pending events are dealt with: in one merged reply (`posted`) or kept unposted."""
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE alert_events SET pending = false, posted = %s WHERE id = ANY(%s)", (posted, event_ids)
            )

    async def posts_since(self, group_id: int, seconds: float) -> int:
        """Thread replies posted for this group in the last `seconds` (the flapping budget)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT count(*) FROM alert_events
                   WHERE group_id = %s AND posted AND at > clock_timestamp() - make_interval(secs => %s)""",
                (group_id, seconds),
            )
            row = await cur.fetchone()
            return int(row[0]) if row else 0

    async def set_flapping(self, group_id: int, flapping: bool) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                """UPDATE alert_groups SET flapping = %s, version = version + 1
                   WHERE id = %s AND flapping <> %s""",
                (flapping, group_id, flapping),
            )

    async def unpainted(self) -> list[int]:
        """Groups whose card or thread is behind their state and nobody is drawing (the sweep's work)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT g.id FROM alert_groups g
                   WHERE (g.drawn_version < g.version
                          OR EXISTS (SELECT 1 FROM alert_events e WHERE e.group_id = g.id AND e.pending))
                     AND (g.paint_lease IS NULL OR g.paint_lease < clock_timestamp())
                   ORDER BY g.id"""
            )
            return [int(r[0]) for r in await cur.fetchall()]

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

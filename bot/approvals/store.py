"""Approval requests in PostgreSQL: each state transition is one compare-and-set statement.

The WHERE clause of every UPDATE names the state it moves from (and, for approvals, that the
request has not expired, that the approver is not the requester and has not approved already),
so two replicas, a Slack retry or a double click can each only ever win once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, LiteralString

from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

State = Literal[
    "requested", "pending", "approved", "running", "succeeded", "failed", "denied", "expired", "cancelled"
]
OPEN_STATES = ("requested", "pending")
FINAL_STATES = ("succeeded", "failed", "denied", "expired", "cancelled")


class ApprovalRecord(BaseModel):
    id: str
    runbook_id: str
    runbook_version: int
    action_id: str
    target: str | None
    risk: str
    params: dict[str, Any]
    preview: dict[str, Any] | None
    preview_digest: str
    binding_hash: str
    reason: str
    requester: str
    channel: str
    thread_ts: str | None
    message_ts: str | None
    state: State
    required_approvals: int
    approvers: list[str]
    decided_by: str | None
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None
    before_values: dict[str, Any] | None
    after_values: dict[str, Any] | None
    note: str | None


class NewRequest(BaseModel):
    runbook_id: str
    runbook_version: int
    action_id: str
    target: str | None
    risk: str
    params: dict[str, Any]
    preview: dict[str, Any] | None
    preview_digest: str
    binding_hash: str
    reason: str
    requester: str
    channel: str
    thread_ts: str | None
    required_approvals: int
    expiry_minutes: int


class ApprovalStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def _one(
        self, sql: LiteralString, params: tuple[Any, ...] | dict[str, Any]
    ) -> ApprovalRecord | None:
        async with self._pool.connection() as conn, conn.cursor(row_factory=class_row(ApprovalRecord)) as cur:
            await cur.execute(sql, params)
            return await cur.fetchone()

    async def create(self, new: NewRequest) -> ApprovalRecord:
        record = await self._one(
            """INSERT INTO approval_requests (runbook_id, runbook_version, action_id, target, risk, params,
                   preview, preview_digest, binding_hash, reason, requester, channel, thread_ts,
                   required_approvals, expires_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                       now() + make_interval(mins => %s))
               RETURNING *""",
            (
                new.runbook_id,
                new.runbook_version,
                new.action_id,
                new.target,
                new.risk,
                Jsonb(new.params),
                Jsonb(new.preview),
                new.preview_digest,
                new.binding_hash,
                new.reason,
                new.requester,
                new.channel,
                new.thread_ts,
                new.required_approvals,
                new.expiry_minutes,
            ),
        )
        assert record is not None
        return record

    async def get(self, request_id: str) -> ApprovalRecord | None:
        return await self._one("SELECT * FROM approval_requests WHERE id = %s", (request_id,))

    async def posted(self, request_id: str, message_ts: str) -> ApprovalRecord | None:
        """The card is in the channel: remember where; requested → pending unless a quick approver
        already moved it on (the card's buttons work from the moment Slack shows it)."""
        return await self._one(
            """UPDATE approval_requests SET message_ts = %s,
                   state = CASE WHEN state = 'requested' THEN 'pending' ELSE state END
               WHERE id = %s RETURNING *""",
            (message_ts, request_id),
        )

    async def approve(self, request_id: str, user: str) -> ApprovalRecord | None:
        """Add `user`'s approval; pending → approved when enough people have approved."""
        return await self._one(
            """UPDATE approval_requests
               SET approvers = array_append(approvers, %(user)s),
                   state = CASE WHEN cardinality(approvers) + 1 >= required_approvals
                                THEN 'approved' ELSE 'pending' END,
                   decided_by = CASE WHEN cardinality(approvers) + 1 >= required_approvals
                                THEN %(user)s ELSE decided_by END,
                   decided_at = CASE WHEN cardinality(approvers) + 1 >= required_approvals
                                THEN now() ELSE decided_at END
               WHERE id = %(id)s AND state IN ('requested', 'pending') AND expires_at > now()
                 AND requester <> %(user)s AND NOT (%(user)s = ANY(approvers))
               RETURNING *""",
            {"user": user, "id": request_id},
        )

    async def start(self, request_id: str) -> ApprovalRecord | None:
        """approved → running: whoever wins this runs the action, exactly once."""
        return await self._one(
            """UPDATE approval_requests SET state = 'running', started_at = now()
               WHERE id = %s AND state = 'approved' RETURNING *""",
            (request_id,),
        )

    async def finish(
        self,
        request_id: str,
        *,
        succeeded: bool,
        result: dict[str, Any],
        before: dict[str, Any] | None,
        note: str | None = None,
    ) -> ApprovalRecord | None:
        return await self._one(
            """UPDATE approval_requests SET state = %s, finished_at = now(), result = %s, before_values = %s,
                   note = %s
               WHERE id = %s AND state = 'running' RETURNING *""",
            ("succeeded" if succeeded else "failed", Jsonb(result), Jsonb(before), note, request_id),
        )

    async def record_after(self, request_id: str, after: dict[str, Any]) -> None:
        await self._one(
            "UPDATE approval_requests SET after_values = %s WHERE id = %s RETURNING *",
            (Jsonb(after), request_id),
        )

    async def deny(self, request_id: str, user: str) -> ApprovalRecord | None:
        return await self._one(
            """UPDATE approval_requests SET state = 'denied', decided_by = %s, decided_at = now()
               WHERE id = %s AND state IN ('requested', 'pending') AND requester <> %s RETURNING *""",
            (user, request_id, user),
        )

    async def cancel(self, request_id: str, user: str) -> ApprovalRecord | None:
        return await self._one(
            """UPDATE approval_requests SET state = 'cancelled', decided_by = %s, decided_at = now()
               WHERE id = %s AND state IN ('requested', 'pending') AND requester = %s RETURNING *""",
            (user, request_id, user),
        )

    async def expire_due(self) -> list[ApprovalRecord]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=class_row(ApprovalRecord)) as cur:
            await cur.execute(
                """UPDATE approval_requests SET state = 'expired', decided_at = now()
                   WHERE state IN ('requested', 'pending') AND expires_at <= now() RETURNING *"""
            )
            return await cur.fetchall()

    async def stranded(self) -> list[tuple[ApprovalRecord, float]]:
        """Requests approved or running, with seconds since that state began (the database's clock)."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=class_row(ApprovalRecord)) as cur:
            await cur.execute(
                """SELECT * FROM approval_requests WHERE state IN ('approved', 'running')
                   ORDER BY created_at"""
            )
            records = await cur.fetchall()
            ages = await conn.execute(
                """SELECT id, extract(epoch FROM now() - coalesce(started_at, decided_at, created_at))::float8
                   FROM approval_requests WHERE id = ANY(%s)""",
                ([r.id for r in records],),
            )
            age_of = {str(row[0]): float(row[1]) for row in await ages.fetchall()}
        return [(r, age_of.get(r.id, 0.0)) for r in records]

    async def interrupt(self, request_id: str, was: State, note: str) -> ApprovalRecord | None:
        """approved|running → failed with `note`, only if it is still in state `was` (compare-and-set)."""
        return await self._one(
            """UPDATE approval_requests SET state = 'failed', finished_at = now(), note = %s,
                   result = %s
               WHERE id = %s AND state = %s RETURNING *""",
            (note, Jsonb({"status": "failed", "error": "interrupted", "values": {}}), request_id, was),
        )

    async def pending_in(self, channel: str) -> list[ApprovalRecord]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=class_row(ApprovalRecord)) as cur:
            await cur.execute(
                """SELECT * FROM approval_requests WHERE channel = %s AND state IN ('requested', 'pending')
                     AND expires_at > now() ORDER BY created_at""",
                (channel,),
            )
            return await cur.fetchall()

    async def decided_in(self, channel: str, limit: int = 20) -> list[ApprovalRecord]:
        """Requests in `channel` past waiting (approved, run, denied, expired, cancelled), newest first."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=class_row(ApprovalRecord)) as cur:
            await cur.execute(
                """SELECT * FROM approval_requests
                    WHERE channel = %s AND state NOT IN ('requested', 'pending')
                     ORDER BY coalesce(finished_at, decided_at, created_at) DESC, id DESC LIMIT %s""",
                (channel, limit),
            )
            return await cur.fetchall()

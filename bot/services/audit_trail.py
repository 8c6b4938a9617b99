"""`/opsbot audit <INC-…|REQ-…>`: an auditor reads, in Slack, the audit events about one approval
request or incident and whether the hash chain verifies — redacted, to the auditor only.
`/opsbot audit refusals`: the latest access refusals (who was refused what, where, why and when).

Who is an auditor is asked of Slack at the moment of the request (membership of the configured
group), like approvers at click time. Every read, and every refused read, is itself audited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from slack_sdk.web.async_client import AsyncWebClient

from bot import audit
from bot.access.gate import REFUSED
from bot.errors import UserError
from bot.logs import Redactor, redact_text, redact_value
from bot.render.audit import audit_blocks, audit_text
from bot.slack.asker import Asker, tell
from bot.slack.directory import Directory

# The channel of an incident (INC-…), or None when there is no such incident.
IncidentChannel = Callable[[str], Awaitable[str | None]]


REFUSALS = "refusals"


class NotAuditor(UserError):
    """The person asking is not in the auditors group."""


class AuditTrail:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        client: AsyncWebClient,
        directory: Directory,
        redactor: Redactor,
        *,
        auditors_group: str,
        incident_channel: IncidentChannel,
    ) -> None:
        self._pool = pool
        self._client = client
        self._directory = directory
        self._redactor = redactor
        self._auditors = auditors_group
        self._incident_channel = incident_channel

    async def show(self, subject: str, asker: Asker) -> None:
        """Authorize (auditors group, now), gather the subject's events, verify the chain, answer."""
        await self._require_auditor(subject, asker)
        channel = await self._incident_channel(subject) if subject.startswith("INC-") else None
        async with self._pool.connection() as conn:
            events = await audit.about(conn, subject, channel)
        await self._answer(subject, events, asker)

    async def refusals(self, asker: Asker, limit: int = 40) -> None:
        """The latest `access.refused` events (guests, other organisations, shared channels, the
        reading policy), oldest of them first; to auditors only, like every audit read."""
        await self._require_auditor(REFUSALS, asker)
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                """SELECT * FROM (SELECT * FROM audit_events WHERE action = %s ORDER BY id DESC LIMIT %s)
                   AS latest ORDER BY id""",
                (REFUSED, limit),
            )
            events = [audit.AuditRecord(**row) for row in await cur.fetchall()]
        await self._answer(REFUSALS, events, asker)

    async def _answer(self, subject: str, events: list[audit.AuditRecord], asker: Asker) -> None:
        """Verify the chain, audit the read itself, and show the events (redacted) to the auditor."""
        events = self._redact_events(events)
        async with self._pool.connection() as conn:
            report = await audit.verify(conn)
            await audit.append(
                conn,
                audit.AuditEvent(
                    actor=asker.user,
                    action="audit.read",
                    outcome="shown",
                    subject=subject,
                    channel=asker.channel,
                ),
            )
        secrets = self._redactor.secrets
        blocks = redact_value(audit_blocks(subject, events, report), secrets)
        await tell(self._client, asker, redact_text(audit_text(subject, events, report), secrets), blocks)

    async def _require_auditor(self, subject: str, asker: Asker) -> None:
        if await self._directory.includes(asker.user, [self._auditors]):
            return
        async with self._pool.connection() as conn:
            await audit.append(
                conn,
                audit.AuditEvent(
                    actor=asker.user,
                    action="audit.read",
                    outcome="not_auditor",
                    subject=subject,
                    channel=asker.channel,
                ),
            )
        raise NotAuditor(
            f"Sorry, the audit log is only shown to members of the `{self._auditors}` user group. "
            "Ask one of them, or run `opsbot audit show` where the bot runs."
        )

    def _redact_events(self, events: list[audit.AuditRecord]) -> list[audit.AuditRecord]:
        # Before rendering: clipping a long value first could cut a secret in half, past recognising.
        secrets = self._redactor.secrets
        return [audit.AuditRecord.model_validate(redact_value(e.model_dump(), secrets)) for e in events]

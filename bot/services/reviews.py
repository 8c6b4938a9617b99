"""Generating, storing and publishing review drafts; keeping people's edits across regenerations."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

import jinja2
from psycopg.rows import class_row, dict_row
from psycopg_pool import AsyncConnectionPool
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals.store import ApprovalRecord
from bot.errors import UserError
from bot.incidents.store import Incident, IncidentStore
from bot.logs import get_logger
from bot.postmortem.builder import build, messages_worth_keeping
from bot.postmortem.facts import DiagnosisRun, Edits, Message, ReviewFacts
from bot.postmortem.history import read_channel, user_names
from bot.postmortem.markup import to_markdown
from bot.postmortem.render import draft_edits, render_markdown
from bot.render import review as review_render
from bot.render.diagnosis import value_words
from bot.runbooks.catalogue import Catalogue
from bot.slack.asker import Asker

log = get_logger(__name__)
_USER_IDS = re.compile(r"<@([UW][A-Z0-9]{2,20})")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


class ReviewError(UserError):
    """Something the person should be told (unknown incident, channel unreadable)."""


class ReviewService:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        incidents: IncidentStore,
        client: AsyncWebClient | None,
        template: jinja2.Template,
        secrets: set[str],
        action_reaction: str = "memo",
        root_cause_reaction: str = "dart",
        catalogue: Catalogue | None = None,
    ) -> None:
        self._pool = pool
        self._incidents = incidents
        self._client = client
        self._template = template
        self._secrets = secrets
        self._action_reaction = action_reaction
        self._root_cause_reaction = root_cause_reaction
        self._catalogue = catalogue

    async def facts(self, incident: Incident) -> ReviewFacts:
        timeline = await self._incidents.entries(incident)
        messages: list[Message] = []
        users: dict[str, str] = {}
        history_read = False
        if self._client is not None and incident.channel_id:
            history = await read_channel(self._client, incident.channel_id)
            ids = {m.user for m in history if m.user} | {incident.declared_by}
            ids |= {e.actor for e in timeline if e.actor} | set(
                _USER_IDS.findall(" ".join(e.text for e in timeline))
            )
            ids = {i for i in ids if _USER_ID.fullmatch(i)}
            users = await user_names(self._client, sorted(ids))
            messages = [
                Message(
                    at=m.at,
                    user=m.user,
                    reactions=m.reactions,
                    is_reply=m.is_reply,
                    text=to_markdown(m.text, users=users, channels={}, secrets=self._secrets),
                )
                for m in history
                if not m.bot_id
            ]
            history_read = True
        # Timeline text is Slack markup too (a pinned message, "<@U…> is scribe"): names, not ids.
        timeline = [
            e.model_copy(
                update={"text": to_markdown(e.text, users=users, channels={}, secrets=self._secrets)}
            )
            for e in timeline
        ]
        return ReviewFacts(
            incident=incident,
            timeline=timeline,
            messages=messages_worth_keeping(messages),
            diagnoses=await self._diagnoses(incident),
            approvals=await self._approvals(incident),
            edits=await self.edits(incident.id),
            users=users,
            generated_at=datetime.now(UTC),
            history_read=history_read,
            action_reaction=self._action_reaction,
            root_cause_reaction=self._root_cause_reaction,
            better=self._better(),
        )

    def _better(self) -> dict[str, Literal["lower", "higher"]]:
        """Which way each runbook check improves, from its crit (else warn) rule: a check that goes
        red above a threshold (`>`, `>=`) is better lower, one that goes red below it better higher."""
        better: dict[str, Literal["lower", "higher"]] = {}
        for runbook in self._catalogue or ():
            for check in runbook.checks:
                rule = check.crit or check.warn
                if rule is not None and rule.op in (">", ">="):
                    better[f"{runbook.id}/{check.id}"] = "lower"
                elif rule is not None and rule.op in ("<", "<="):
                    better[f"{runbook.id}/{check.id}"] = "higher"
        return better

    async def _diagnoses(self, incident: Incident) -> list[DiagnosisRun]:
        if not incident.channel_id:
            return []
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                """SELECT started_at, runbook_id, overall, requested_by, result FROM diagnosis_runs
                   WHERE channel = %s ORDER BY started_at""",
                (incident.channel_id,),
            )
            rows = await cur.fetchall()
        runs = []
        for row in rows:
            result: dict[str, Any] = row["result"]
            checks = result.get("checks", [])
            red = [
                f"{c['title']} ({value_words(c.get('value'))})" for c in checks if c.get("status") == "crit"
            ]
            unseen = [
                f"{c['title']} ({c.get('reason') or 'no reason recorded'})"
                for c in checks
                if c.get("status") == "unknown"
            ]
            runs.append(
                DiagnosisRun(
                    at=row["started_at"],
                    runbook_id=row["runbook_id"],
                    title=str(result.get("title", row["runbook_id"])),
                    overall=row["overall"],
                    requested_by=row["requested_by"],
                    red=red,
                    unseen=unseen,
                )
            )
        return runs

    async def _approvals(self, incident: Incident) -> list[ApprovalRecord]:
        if not incident.channel_id:
            return []
        async with self._pool.connection() as conn, conn.cursor(row_factory=class_row(ApprovalRecord)) as cur:
            await cur.execute(
                "SELECT * FROM approval_requests WHERE channel = %s ORDER BY created_at",
                (incident.channel_id,),
            )
            return await cur.fetchall()

    async def edits(self, incident_id: str) -> Edits:
        return await self._saved_edits(incident_id) or Edits()

    async def _saved_edits(self, incident_id: str) -> Edits | None:
        async with self._pool.connection() as conn, conn.cursor(row_factory=class_row(Edits)) as cur:
            await cur.execute(
                "SELECT summary, impact, users_affected, root_cause FROM postmortem_edits"
                " WHERE incident_id = %s",
                (incident_id,),
            )
            return await cur.fetchone()

    async def save_edits(self, incident_id: str, edits: Edits, by: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                """INSERT INTO postmortem_edits
                       (incident_id, summary, impact, users_affected, root_cause, updated_by)
                   VALUES (%s, %s, %s, %s, %s, %s)
                   ON CONFLICT (incident_id) DO UPDATE SET summary = EXCLUDED.summary,
                       impact = EXCLUDED.impact,
                       users_affected = EXCLUDED.users_affected, root_cause = EXCLUDED.root_cause,
                       updated_by = EXCLUDED.updated_by, updated_at = now()""",
                (incident_id, edits.summary, edits.impact, edits.users_affected, edits.root_cause, by),
            )

    async def generate(self, incident_id: str, by: str) -> tuple[int, str, list[str]]:
        """Build and store a new version; returns (version, markdown, what is still to fill)."""
        incident = await self._incidents.get(incident_id)
        if incident is None:
            raise ReviewError(f"No incident {incident_id}.")
        draft = build(await self.facts(incident))
        markdown = render_markdown(draft, self._template)
        async with self._pool.connection() as conn, conn.transaction():
            # Two drafts at once (the button and the command) would both take max(version) + 1.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"postmortem:{incident_id}",))
            row = await (
                await conn.execute(
                    """INSERT INTO postmortems (incident_id, version, markdown, created_by)
                   SELECT %s, coalesce(max(version), 0) + 1, %s, %s FROM postmortems WHERE incident_id = %s
                   RETURNING version""",
                    (incident_id, markdown, by, incident_id),
                )
            ).fetchone()
        assert row is not None
        log.info("review_draft_generated", incident_id=incident_id, version=row[0], missing=draft.missing)
        return int(row[0]), markdown, draft.missing

    # --- use cases: `/incident postmortem`, "Draft review", edit and regenerate ---

    async def incident_on_card(self, incident_id: str, channel: str | None) -> Incident:
        incident = await self._incidents.get(incident_id)
        if incident is None or channel is None or incident.channel_id != channel:
            raise ReviewError("That incident is not in this channel.")
        return incident

    async def publish(self, incident: Incident, by: str) -> None:
        """Generate a new version, upload it to the incident channel, and post what is still to fill."""
        if self._client is None or incident.channel_id is None:
            raise ReviewError("There is no incident channel to attach the draft to.")
        try:
            version, markdown, missing = await self.generate(incident.id, by)
        except UserError as exc:
            raise ReviewError(f"No draft: {exc.message}") from None
        try:
            await self._client.files_upload_v2(
                channel=incident.channel_id,
                filename=f"{incident.id}-review-v{version}.md",
                content=markdown,
                title=f"{incident.id} post-incident review, draft v{version}",
            )
        except SlackApiError as exc:
            raise ReviewError(
                f"Draft v{version} is saved but could not be uploaded "
                f"({exc.response.get('error')}); `opsbot postmortem {incident.id}`."
            ) from None
        text = review_render.published_text(incident, version, by, missing)
        await self._client.chat_postMessage(
            channel=incident.channel_id,
            text=text,
            blocks=review_render.published_blocks(incident, version, text),
        )

    async def open_editor(self, incident: Incident, asker: Asker) -> None:
        if self._client is None:
            raise ReviewError("opsbot has no Slack connection.")
        # Before anyone has saved an edit, the form starts from what the latest draft says, so a
        # person corrects the text they read instead of retyping it.
        edits = await self._saved_edits(incident.id)
        if edits is None:
            latest = await self.latest(incident.id)
            edits = draft_edits(latest) if latest else Edits()
        await self._client.views_open(
            trigger_id=asker.trigger_id, view=review_render.edit_modal(incident, edits)
        )

    async def edit_and_publish(self, incident_id: str, edits: Edits, by: str) -> None:
        incident = await self._incidents.get(incident_id)
        if incident is None:
            return
        await self.save_edits(incident.id, edits, by)
        await self.publish(incident, by)

    async def latest(self, incident_id: str) -> str | None:
        """The newest draft's Markdown, if one was made."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT markdown FROM postmortems WHERE incident_id = %s ORDER BY version DESC LIMIT 1",
                    (incident_id,),
                )
            ).fetchone()
        return str(row[0]) if row else None

    async def versions(self, incident_id: str) -> list[tuple[int, str]]:
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT version, markdown FROM postmortems WHERE incident_id = %s ORDER BY version",
                    (incident_id,),
                )
            ).fetchall()
        return [(int(v), str(m)) for v, m in rows]

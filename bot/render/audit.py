"""`/opsbot audit <INC-…|REQ-…>`: the audit events about one request or incident, with whether the
hash chain they sit in verifies. Pure: the caller redacts the text before it leaves the bot."""

from __future__ import annotations

import json
import re

from bot.audit import AuditRecord, ChainReport
from bot.mrkdwn import clip, escape
from bot.render.blocks import MAX_BLOCKS, SECTION_TEXT, Block, context, header, section

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,20}$")


def chain_line(report: ChainReport) -> str:
    """Fail closed: a chain that does not verify says so before any event is read."""
    if report.ok:
        return f"🔗 Audit chain verified: all {report.rows} events link and hash correctly."
    return (
        f"⚠️ Audit chain BROKEN at event #{report.first_bad_id} ({report.reason}): "
        "events from there on cannot be trusted."
    )


def _who(actor: str) -> str:
    return f"<@{actor}>" if USER_ID.match(actor) else escape(actor)


def _where(channel: str) -> str:
    return f"<#{channel}>" if CHANNEL_ID.match(channel) else escape(channel)


def _event_line(event: AuditRecord) -> str:
    details = {k: v for k, v in event.details.items() if k not in ("hash",) and v not in (None, "", {}, [])}
    shown = clip(json.dumps(details, ensure_ascii=False, default=str, sort_keys=True), 300) if details else ""
    subject = f" {escape(event.subject)}" if event.subject else ""
    where = f" in {_where(event.channel)}" if event.channel else ""
    line = (
        f"• `#{event.id}` {event.at:%Y-%m-%d %H:%M:%S} UTC · {_who(event.actor)} · "
        f"*{escape(event.action)}* → {escape(event.outcome)}{subject}{where}"
    )
    return f"{line}\n    `{escape(shown)}`" if shown else line


def audit_blocks(subject: str, events: list[AuditRecord], report: ChainReport) -> list[Block]:
    blocks: list[Block] = [header(f"Audit: {subject}"), section(chain_line(report))]
    if not events:
        blocks.append(section(f"No audit events about {escape(subject)}."))
        return blocks
    chunk = ""
    for line in (_event_line(e) for e in events):
        if len(chunk) + len(line) + 1 > SECTION_TEXT:
            blocks.append(section(chunk))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        blocks.append(section(chunk))
    shown = blocks[: MAX_BLOCKS - 1]
    left = len(blocks) - len(shown)
    note = f"{len(events)} events, oldest first" + (f" · {left} more sections not shown" if left else "")
    return [*shown, context(note)]


def audit_text(subject: str, events: list[AuditRecord], report: ChainReport) -> str:
    return f"Audit of {subject}: {len(events)} events. {chain_line(report)}"

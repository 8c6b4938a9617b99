"""Approval cards, the request modal, and the before/after report — all within Slack's limits."""

from __future__ import annotations

import json
from typing import Any

from bot.approvals.binding import NOTHING_NOW, affects_nothing
from bot.approvals.store import ApprovalRecord
from bot.mrkdwn import clip, escape
from bot.probes import ProbeResult
from bot.render.blocks import Block, context, header, section
from bot.render.catalogue import RISK_BADGE, approvals_wording
from bot.render.table import render_table
from bot.runbooks.model import Action, Runbook
from bot.runbooks.params import format_duration

APPROVE = "approval_approve"
DENY = "approval_deny"
CANCEL = "approval_cancel"
REQUEST_VIEW = "approval_request"
REASON_BLOCK = "reason"
REASON_INPUT = "reason"

STATE_LINE = {
    "requested": "⏳ Waiting for approval",
    "pending": "⏳ Waiting for approval",
    "approved": "✅ Approved — running",
    "running": "⚙️ Running",
    "succeeded": "✅ Done",
    "failed": "❌ Failed",
    "denied": "🚫 Denied",
    "expired": "⌛ Expired — nothing was run",
    "cancelled": "↩️ Cancelled by the requester — nothing was run",
}

# The card's heading: what is asked while it waits, the outcome once it is decided.
HEADING = {
    "approved": "⚙️ Approved — running",
    "running": "⚙️ Running",
    "succeeded": "✅ Done",
    "failed": "❌ Failed",
    "denied": "🚫 Denied",
    "expired": "⌛ Expired",
    "cancelled": "↩️ Cancelled",
}


def heading(record: ApprovalRecord, action: Action) -> str:
    waiting = f"{'🔴' if action.risk == 'critical' else '🟠'} Approval needed"
    return f"{HEADING.get(record.state, waiting)}: {action.title}"


def decision_receipt(record: ApprovalRecord) -> str:
    """What the person who just clicked did: "Approved 1 of 2 — one more approval needed"."""
    if record.state == "denied":
        return f"Denied {record.id}: nothing will run."
    if record.state == "cancelled":
        return f"Cancelled {record.id}: nothing will run."
    done = f"Approved {len(record.approvers)} of {record.required_approvals}"
    if record.state in ("requested", "pending"):
        left = record.required_approvals - len(record.approvers)
        more = "one more approval" if left == 1 else f"{left} more approvals"
        return f"{done} — {more} needed ({record.id})."
    return f"{done} — running now ({record.id})."


REDIS_NO_PREVIEW = {
    "FLUSHDB": "FLUSHDB has no dry run; it removes every key in the database as it is when it runs",
    "BGSAVE": "BGSAVE writes a snapshot of whatever is in Redis when it runs; there is nothing to list first",
    "MEMORY PURGE": "MEMORY PURGE frees allocator pages; Redis cannot say beforehand how much",
    "CONFIG SET": "CONFIG SET changes a setting in place; Redis has no dry run for it",
}


def no_preview_reason(action: Action) -> str | None:
    """Why an action that changes something shows no preview; None when it has one (or is manual)."""
    step = action.step
    if action.preview is not None or step.kind == "manual":
        return None
    if step.kind == "redis":
        return REDIS_NO_PREVIEW.get(
            step.command,
            f"{step.command} has no dry run in Redis; it acts on the keys as they are when it runs",
        )
    if step.kind == "http":
        return (
            f"a {step.method} to `{step.path}` cannot be tried without sending it, "
            "and the runbook lists no read first"
        )
    if step.kind == "command":
        return "a command on the host cannot be tried without running it, and the runbook lists no read first"
    return "the runbook defines no read-only query that lists what this statement would change"


def params_line(runbook: Runbook, params: dict[str, Any]) -> str:
    durations = {p.name for p in runbook.params if p.type == "duration"}
    if not params:
        return "none"
    return " ".join(f"`{k}={format_duration(v) if k in durations else v}`" for k, v in params.items())


def request_modal(
    runbook: Runbook,
    action: Action,
    params: dict[str, Any],
    metadata: dict[str, Any],
    approvals: int,
    expiry_minutes: int,
) -> dict[str, Any]:
    target = getattr(action.step, "target", "—")
    text = (
        f"*{escape(action.title)}*\n{escape(action.summary)}\n\n"
        f"Risk: {RISK_BADGE[action.risk]} · target `{target}` · parameters {params_line(runbook, params)}\n"
        f"{approvals_wording(approvals)} from someone else; "
        f"the request expires after {expiry_minutes} minutes.\n" + _preview_promise(action)
    )
    return {
        "type": "modal",
        "callback_id": REQUEST_VIEW,
        "title": {"type": "plain_text", "text": "Request approval"},
        "submit": {"type": "plain_text", "text": "Request"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps(metadata, default=str)[:3000],
        "blocks": [
            section(text),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Why is this needed? (shown to the approver)"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "min_length": 5,
                    "max_length": 500,
                },
            },
        ],
    }


def _preview_promise(action: Action) -> str:
    reason = no_preview_reason(action)
    if reason is not None:
        return f"*No preview:* {escape(reason)}."
    if action.preview is None:
        return ""
    return "*Preview:* computed when you send this; the approvers see what it would affect."


def _preview_section(record: ApprovalRecord, action: Action) -> Block | None:
    if record.preview is None:
        reason = no_preview_reason(action)
        return section(f"*No preview:* {escape(reason)}.") if reason else None
    preview = ProbeResult.model_validate(record.preview)
    if preview.status != "ok":
        return section(f"*Preview* could not be computed: {escape(preview.error or preview.status)}")
    if not preview.columns:
        return None
    if affects_nothing(preview):
        return section(f"*Preview:* {NOTHING_NOW} (0 rows).")
    table, left = render_table(preview.columns, preview.rows, budget=1500)
    more = f"\n_{left} more rows_" if left else ""
    return section(
        f"*Would affect {len(preview.rows)} row{'s' if len(preview.rows) != 1 else ''}:*\n{table}{more}"
    )


def approval_card(record: ApprovalRecord, runbook: Runbook, action: Action) -> list[Block]:
    expires = int(record.expires_at.timestamp())
    who = ", ".join(f"<@{u}>" for u in record.approvers) or "nobody yet"
    blocks: list[Block] = [
        header(heading(record, action)),
        section(
            f"*Requested by* <@{record.requester}> · *risk* {RISK_BADGE[action.risk]} · "
            f"*target* `{record.target}`\n"
            f"*Runbook* `{runbook.id}` v{record.runbook_version} · "
            f"*parameters* {params_line(runbook, record.params)}\n"
            f"*Reason:* {escape(clip(record.reason, 600))}\n"
            f"{approvals_wording(record.required_approvals)} from someone else"
        ),
    ]
    preview = _preview_section(record, action)
    if preview is not None:
        blocks.append(preview)
    status = STATE_LINE[record.state]
    if record.state in ("approved", "running", "succeeded", "failed"):
        status += f" · approved by {who}"
    if record.state == "denied" and record.decided_by:
        status += f" by <@{record.decided_by}>"
    if record.state in ("succeeded", "failed") and record.result:
        error = record.result.get("error")
        status += f" · {escape(str(error))}" if error and record.state == "failed" else ""
    if record.note:
        status += f"\n{escape(record.note)}"
    blocks.append(section(f"*Status:* {status}"))
    if record.state in ("requested", "pending"):
        blocks.append(
            context(
                f"{record.id} · {len(record.approvers)} of {record.required_approvals} approvals ({who}) · "
                f"expires <!date^{expires}^{{time}}|{record.expires_at:%H:%M} UTC> · "
                f"hash `{record.binding_hash[:12]}`"
            )
        )
        blocks.append(
            {"type": "actions", "block_id": f"approval:{record.id}", "elements": _buttons(record, action)}
        )
    else:
        blocks.append(context(f"{record.id} · hash `{record.binding_hash[:12]}`"))
    return blocks


def _buttons(record: ApprovalRecord, action: Action) -> list[Block]:
    return [
        {
            "type": "button",
            "action_id": APPROVE,
            "text": {"type": "plain_text", "text": "Approve"},
            "style": "primary",
            "value": record.id,
            "confirm": {
                "title": {"type": "plain_text", "text": "Approve and run?"},
                "text": {
                    "type": "mrkdwn",
                    "text": clip(
                        f"{action.title} on `{record.target}` will run as soon as "
                        "the required approvals are in.",
                        300,
                    ),
                },
                "confirm": {"type": "plain_text", "text": "Approve"},
                "deny": {"type": "plain_text", "text": "Back"},
            },
        },
        {
            "type": "button",
            "action_id": DENY,
            "text": {"type": "plain_text", "text": "Deny"},
            "style": "danger",
            "value": record.id,
        },
        {
            "type": "button",
            "action_id": CANCEL,
            "text": {"type": "plain_text", "text": "Cancel request"},
            "value": record.id,
        },
    ]


def approval_text(record: ApprovalRecord, action: Action) -> str:
    return f"{heading(record, action)} ({record.id})"


def before_after(record: ApprovalRecord) -> str | None:
    """'Idle connections holding pool slots: 52 → 3 connections' lines, from the verify checks."""
    if not record.before_values and not record.after_values:
        return None
    before, after = record.before_values or {}, record.after_values or {}
    lines = []
    for check_id in dict.fromkeys([*before, *after]):
        b, a = before.get(check_id, {}), after.get(check_id, {})
        title = a.get("title") or b.get("title") or check_id
        unit = a.get("unit") or b.get("unit") or ""
        lines.append(f"• *{escape(title)}*: {b.get('value', '?')} → {a.get('value', '?')} {unit}".rstrip())
    return "*Before → after*\n" + "\n".join(lines)


def result_text(record: ApprovalRecord) -> str:
    result = record.result or {}
    values = result.get("values") or {}
    shown = ", ".join(f"{k}={v}" for k, v in values.items() if k != "latency_ms") or "no values"
    text = f"*{record.id} {record.state}* in {result.get('latency_ms', 0):.0f} ms: {escape(shown)}"
    if result.get("error"):
        text += f"\nError: {escape(str(result['error']))}"
    output = str(result.get("output") or "").strip()
    if output:
        fenced = clip(output.replace("```", "'''"), 2500)
        text += "\n```" + fenced + "```"
    return clip(text, 2900)


def pending_blocks(pending: list[ApprovalRecord], viewer: str) -> list[Block]:
    """`/approvals`: one line per waiting request; Cancel buttons for the viewer's own."""
    lines = [
        f"• *{r.id}* {escape(r.action_id)} on `{r.target}` ({r.runbook_id}) — asked by <@{r.requester}>, "
        f"{approvals_wording(r.required_approvals)} ({len(r.approvers)} so far), "
        f"expires {r.expires_at:%H:%M} UTC"
        for r in pending
    ]
    blocks: list[Block] = [section("\n".join(lines)[:2900])]
    own = [r for r in pending if r.requester == viewer][:20]
    if own:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": CANCEL,
                        "value": r.id,
                        "text": {"type": "plain_text", "text": f"Cancel {r.id}"},
                    }
                    for r in own
                ],
            }
        )
    return blocks


def _decided_by(record: ApprovalRecord) -> str:
    if record.state == "denied":
        return f"denied by <@{record.decided_by}>" if record.decided_by else "denied"
    if record.state == "cancelled":
        return f"cancelled by <@{record.decided_by or record.requester}>"
    if record.state == "expired":
        approved = ", ".join(f"<@{u}>" for u in record.approvers)
        return f"nobody decided in time{f' (approved by {approved} only)' if approved else ''}"
    return "approved by " + (", ".join(f"<@{u}>" for u in record.approvers) or "nobody")


def history_blocks(decided: list[ApprovalRecord]) -> list[Block]:
    """`/approvals history`: decided requests in this channel, newest first, outcome and who decided."""
    lines = []
    for r in decided:
        when = r.finished_at or r.decided_at or r.created_at
        outcome = HEADING.get(r.state, r.state)
        lines.append(
            f"• *{r.id}* {outcome} · {escape(r.action_id)} on `{r.target}` ({r.runbook_id}) — "
            f"asked by <@{r.requester}>, {_decided_by(r)} · {when:%Y-%m-%d %H:%M} UTC"
        )
    blocks: list[Block] = []
    chunk = ""
    for line in lines:
        if len(chunk) + len(line) + 1 > 2900:
            blocks.append(section(chunk))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        blocks.append(section(chunk))
    return blocks

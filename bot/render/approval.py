"""Approval cards, the request modal, and the before/after report — all within Slack's limits."""

from __future__ import annotations

import json
from typing import Any

from bot.approvals.store import ApprovalRecord
from bot.mrkdwn import clip, escape
from bot.probes import ProbeResult
from bot.render.blocks import Block, context, header, section
from bot.render.catalogue import RISK_BADGE
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
        f"Needs {approvals} approval{'s' if approvals > 1 else ''} from someone else; "
        f"the request expires after {expiry_minutes} minutes."
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


def _preview_section(record: ApprovalRecord) -> Block | None:
    if record.preview is None:
        return None
    preview = ProbeResult.model_validate(record.preview)
    if preview.status != "ok":
        return section(f"*Preview* could not be computed: {escape(preview.error or preview.status)}")
    if not preview.columns:
        return None
    table, left = render_table(preview.columns, preview.rows, budget=1500)
    more = f"\n_{left} more rows_" if left else ""
    return section(
        f"*Would affect {len(preview.rows)} row{'s' if len(preview.rows) != 1 else ''}:*\n{table}{more}"
    )


def approval_card(record: ApprovalRecord, runbook: Runbook, action: Action) -> list[Block]:
    expires = int(record.expires_at.timestamp())
    who = ", ".join(f"<@{u}>" for u in record.approvers) or "nobody yet"
    blocks: list[Block] = [
        header(f"{'🔴' if action.risk == 'critical' else '🟠'} Approval needed: {action.title}"),
        section(
            f"*Requested by* <@{record.requester}> · *risk* {RISK_BADGE[action.risk]} · "
            f"*target* `{record.target}`\n"
            f"*Runbook* `{runbook.id}` v{record.runbook_version} · "
            f"*parameters* {params_line(runbook, record.params)}\n"
            f"*Reason:* {escape(clip(record.reason, 600))}"
        ),
    ]
    preview = _preview_section(record)
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
    return f"{STATE_LINE[record.state]}: {action.title} ({record.id})"


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
        f"{len(r.approvers)}/{r.required_approvals} approvals, expires {r.expires_at:%H:%M} UTC"
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

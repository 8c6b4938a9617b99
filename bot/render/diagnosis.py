"""The diagnosis card: overall status, one line per check with value and threshold, tables,
manual steps and buttons for what the runbook suggests next — always within Slack's limits.
"""

from __future__ import annotations

from typing import Any

from bot.mrkdwn import clip, escape
from bot.render.blocks import (
    BUTTON_VALUE,
    MAX_BLOCKS,
    SECTION_TEXT,
    Block,
    context,
    divider,
    header,
    section,
)
from bot.render.table import plain_table, render_table
from bot.runbooks.buttons import ActionButton, RunButton
from bot.runbooks.engine import CheckOutcome, Diagnosis
from bot.runbooks.model import RISK_ORDER, Runbook
from bot.runbooks.params import format_duration

EMOJI = {"ok": "🟢", "warn": "🟡", "crit": "🔴", "error": "⚠️"}
LABEL = {"ok": "OK", "warn": "WARNING", "crit": "CRITICAL", "error": "ERROR"}
RUN_RUNBOOK = "run_runbook"
REQUEST_ACTION = "request_action"
TABLE_BUDGET = 1800


def _value_text(outcome: CheckOutcome) -> str:
    if outcome.status == "error":
        return f"error: {escape(outcome.result.error or 'no answer')}"
    if outcome.value is None:
        shown = "no data" if outcome.threshold else f"answered in {outcome.result.latency_ms:.0f} ms"
        return shown
    value = outcome.value
    if isinstance(value, float):
        value = f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"*{escape(str(value))}*{(' ' + outcome.unit) if outcome.unit else ''}"


def check_line(outcome: CheckOutcome) -> str:
    line = f"{EMOJI[outcome.status]} *{escape(outcome.title)}* — {_value_text(outcome)}"
    if outcome.threshold:
        line += f"  _({outcome.threshold})_"
    if outcome.explain and outcome.status in ("warn", "crit"):
        line += f"\n      ↳ {escape(outcome.explain)}"
    return line


def params_text(params: dict[str, Any], durations: set[str]) -> str:
    shown = [f"{k}={format_duration(v) if k in durations else v}" for k, v in params.items()]
    return " ".join(shown)


def diagnosis_blocks(
    diagnosis: Diagnosis, runbook: Runbook, *, requested_by: str | None = None, shared: bool = False
) -> tuple[list[Block], bool]:
    """The card's blocks, and whether some output did not fit (so the full output goes to the thread)."""
    durations = {p.name for p in runbook.params if p.type == "duration"}
    blocks: list[Block] = [
        header(f"{EMOJI[diagnosis.overall]} {runbook.title} — {LABEL[diagnosis.overall]}"),
    ]
    meta = [f"`{runbook.id}`", diagnosis.run_id, f"{diagnosis.duration_ms:.0f} ms"]
    if diagnosis.params:
        meta.append(params_text(diagnosis.params, durations))
    if requested_by:
        meta.append(f"asked by <@{requested_by}>")
    if shared:
        meta.append("shared result of an identical run moments ago")
    blocks.append(context(" · ".join(meta)))

    overflow = False
    lines: list[str] = []
    tables: list[Block] = []
    for outcome in diagnosis.checks:
        lines.append(check_line(outcome))
        check = runbook.check(outcome.check_id)
        result = outcome.result
        if check is not None and check.show_rows and result.columns and result.rows:
            table, left = render_table(result.columns, result.rows, budget=TABLE_BUDGET)
            note = f"\n_{left} more rows — full output in the thread_" if left else ""
            overflow = overflow or bool(left) or result.truncated
            tables.append(section(f"*{escape(outcome.title)}*\n{table}{note}"))
    blocks += _pack_lines(lines)
    room = MAX_BLOCKS - len(blocks) - 4
    if len(tables) > room:
        overflow = True
        tables = tables[: max(room, 0)]
    blocks += tables
    if runbook.manual:
        steps = "\n".join(f"• {escape(step)}" for step in runbook.manual)
        blocks.append(
            section(clip(f"*Manual steps* (not automated — a person does these)\n{steps}", SECTION_TEXT))
        )
    buttons = suggestion_buttons(diagnosis, runbook)
    if buttons:
        blocks.append(divider())
        notes = {s.note for s in diagnosis.suggestions if s.note}
        if notes:
            blocks.append(context(*sorted(notes)[:3]))
        blocks.append({"type": "actions", "block_id": f"next:{diagnosis.run_id}", "elements": buttons[:25]})
    if overflow:
        blocks.append(context("Some output did not fit here: the full output is in the thread."))
    return blocks[:MAX_BLOCKS], overflow


def _pack_lines(lines: list[str]) -> list[Block]:
    """Check lines packed into as few sections as fit, never splitting a line."""
    blocks, current = [], ""
    for line in lines:
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > SECTION_TEXT and current:
            blocks.append(section(current))
            candidate = line
        current = candidate
    if current:
        blocks.append(section(current))
    return blocks


def suggestion_buttons(diagnosis: Diagnosis, runbook: Runbook) -> list[Block]:
    buttons: list[Block] = []
    for index, suggestion in enumerate(diagnosis.suggestions):
        if suggestion.kind == "runbook":
            value = RunButton(runbook=suggestion.ref).model_dump_json()
            buttons.append(_button(f"▶ Run {suggestion.ref}", f"{RUN_RUNBOOK}:{index}", value))
            continue
        action = runbook.action(suggestion.ref)
        if action is None:
            continue
        button = ActionButton(runbook=runbook.id, action=action.id, params=diagnosis.params)
        value = button.model_dump_json()
        if len(value) > BUTTON_VALUE:
            value = ActionButton(runbook=runbook.id, action=action.id).model_dump_json()
        risky = RISK_ORDER[action.risk] >= 2
        label = action.title + (" · needs approval" if action.risk != "read_only" else "")
        buttons.append(_button(label, f"{REQUEST_ACTION}:{index}", value, style="danger" if risky else None))
    return buttons


def _button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": clip(text, 75), "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def full_output(diagnosis: Diagnosis) -> str:
    """Every check's complete output as Markdown, for the file in the thread."""
    parts = [f"# {diagnosis.title} — {LABEL[diagnosis.overall]}", f"run {diagnosis.run_id}", ""]
    for outcome in diagnosis.checks:
        parts.append(f"## {EMOJI[outcome.status]} {outcome.title}")
        parts.append(f"status: {outcome.status}; value: {outcome.value}; {outcome.threshold}")
        if outcome.result.error:
            parts.append(f"error: {outcome.result.error}")
        if outcome.result.columns:
            parts += ["```", plain_table(outcome.result.columns, outcome.result.rows), "```"]
            if outcome.result.truncated:
                parts.append("(the probe's row cap was reached; more rows exist)")
        parts.append("")
    return "\n".join(parts)


def diagnosis_text(diagnosis: Diagnosis) -> str:
    """Notification fallback text."""
    return f"{EMOJI[diagnosis.overall]} {diagnosis.title}: {LABEL[diagnosis.overall]}"

"""The diagnosis card: overall status, one line per check with value and threshold, tables,
manual steps and buttons for what the runbook suggests next — always within Slack's limits.

Every status is a colour *and* a word (🟢 OK, 🟡 WARNING, 🔴 CRITICAL, ⚪ UNKNOWN), values read as
words (yes/no, not True/False), and an unknown check says why it measured nothing. Whatever the
card cuts — rows, long cells, long values or reasons, blocks beyond Slack's 50 — sets `overflow`,
and `full_output` (the file attached in the thread) holds it uncut.
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
from bot.render.table import fit_table, plain_table
from bot.runbooks.buttons import ActionButton, RunButton
from bot.runbooks.engine import CheckOutcome, Diagnosis
from bot.runbooks.model import RISK_ORDER, STATUS_WORD, Runbook, yes_no
from bot.runbooks.params import format_duration

EMOJI = {"ok": "🟢", "warn": "🟡", "crit": "🔴", "unknown": "⚪"}
LABEL = STATUS_WORD
RUN_RUNBOOK = "run_runbook"
REQUEST_ACTION = "request_action"
TABLE_BUDGET = 1800
VALUE_MAX = 200
REASON_MAX = 300
NOTES_SHOWN = 3
# Blocks that may follow the tables: manual steps, divider, notes, buttons, the overflow note.
_TAIL_BLOCKS = 5


def badge(status: str) -> str:
    """A status as colour and word: `🔴 CRITICAL`."""
    return f"{EMOJI[status]} {LABEL[status]}"


def value_words(value: object) -> str:
    """A measured value as a person reads it: yes/no, 1,234.5, text."""
    if value is None:
        return "no value"
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def could_not_see(diagnosis: Diagnosis) -> list[str]:
    """Titles of the checks that measured nothing."""
    return [o.title for o in diagnosis.checks if o.status == "unknown"]


def _reason(outcome: CheckOutcome) -> str:
    return outcome.reason or outcome.result.error or "nothing was measured"


def _value_text(outcome: CheckOutcome) -> tuple[str, bool]:
    """The value (or, for an unknown check or one crit because it did not answer, the reason) as
    shown, and whether it was cut."""
    if outcome.status == "unknown" or (outcome.value is None and outcome.reason):
        reason = _reason(outcome)
        return escape(clip(reason, REASON_MAX)), len(reason) > REASON_MAX
    if outcome.value is None:
        return f"answered in {outcome.result.latency_ms:.0f} ms", False
    value = value_words(outcome.value)
    unit = f" {outcome.unit}" if outcome.unit else ""
    return f"*{escape(clip(value, VALUE_MAX))}*{unit}", len(value) > VALUE_MAX


def _check_line(outcome: CheckOutcome) -> tuple[str, bool]:
    value, cut = _value_text(outcome)
    line = f"{badge(outcome.status)} · *{escape(outcome.title)}* — {value}"
    if outcome.threshold:
        line += f"  _({outcome.threshold})_"
    if outcome.explain and outcome.status != "ok":
        line += f"\n      ↳ {escape(outcome.explain)}"
    return line, cut or len(line) > SECTION_TEXT


def check_line(outcome: CheckOutcome) -> str:
    """One check as a card line: `🔴 CRITICAL · *Idle connections* — *57* connections  _(…)_`."""
    return _check_line(outcome)[0]


def params_text(params: dict[str, Any], durations: set[str]) -> str:
    shown = [f"{k}={format_duration(v) if k in durations else v}" for k, v in params.items()]
    return " ".join(shown)


def diagnosis_blocks(
    diagnosis: Diagnosis, runbook: Runbook, *, requested_by: str | None = None, shared: bool = False
) -> tuple[list[Block], bool]:
    """The card's blocks, and whether some output did not fit (so the full output goes to the thread)."""
    blocks: list[Block] = [
        header(f"{EMOJI[diagnosis.overall]} {runbook.title} — {LABEL[diagnosis.overall]}"),
        _meta(diagnosis, runbook, requested_by, shared),
    ]
    overflow = False
    unseen = could_not_see(diagnosis)
    if unseen:
        warning = f"⚠️ *Could not see:* {escape(', '.join(unseen))} — not checked, so not an all-clear."
        overflow = len(warning) > SECTION_TEXT
        blocks.append(context(warning))
    lines, tables, cut = _checks(diagnosis, runbook)
    blocks += _pack_lines(lines)
    room = MAX_BLOCKS - len(blocks) - _TAIL_BLOCKS
    overflow = overflow or cut or len(tables) > room
    blocks += tables[: max(room, 0)]
    tail, cut = _tail(diagnosis, runbook)
    blocks += tail
    overflow = overflow or cut or len(blocks) > MAX_BLOCKS
    if overflow:
        blocks = blocks[: MAX_BLOCKS - 1]
        blocks.append(context("Some output did not fit here: the full output is in the thread."))
    return blocks, overflow


def _meta(diagnosis: Diagnosis, runbook: Runbook, requested_by: str | None, shared: bool) -> Block:
    durations = {p.name for p in runbook.params if p.type == "duration"}
    meta = [f"`{runbook.id}`", diagnosis.run_id, f"{diagnosis.duration_ms:.0f} ms"]
    if diagnosis.params:
        meta.append(params_text(diagnosis.params, durations))
    if requested_by:
        meta.append(f"asked by <@{requested_by}>")
    if shared:
        meta.append("shared result of an identical run moments ago")
    return context(" · ".join(meta))


def _checks(diagnosis: Diagnosis, runbook: Runbook) -> tuple[list[str], list[Block], bool]:
    """One line per check, a table per check that shows its rows, and whether anything was cut."""
    lines: list[str] = []
    tables: list[Block] = []
    overflow = False
    for outcome in diagnosis.checks:
        line, cut = _check_line(outcome)
        lines.append(line)
        overflow = overflow or cut
        check = runbook.check(outcome.check_id)
        result = outcome.result
        if check is not None and check.show_rows and result.columns and result.rows:
            table = fit_table(result.columns, result.rows, budget=TABLE_BUDGET)
            if table.left:
                note = f"\n_{table.left} more rows — full output in the thread_"
            elif table.clipped:
                note = "\n_long lines end in … here — whole in the thread_"
            else:
                note = ""
            overflow = overflow or bool(table.left) or table.clipped or result.truncated
            tables.append(section(f"*{escape(outcome.title)}*\n{table.text}{note}"))
    return lines, tables, overflow


def _tail(diagnosis: Diagnosis, runbook: Runbook) -> tuple[list[Block], bool]:
    """Manual steps, advice, and the buttons for what to do next; and whether anything was cut."""
    blocks: list[Block] = []
    overflow = False
    if runbook.manual:
        steps = "\n".join(f"• {escape(step)}" for step in runbook.manual)
        text = f"*Manual steps* (not automated — a person does these)\n{steps}"
        overflow = len(text) > SECTION_TEXT
        blocks.append(section(text))
    if diagnosis.notes:
        blocks.append(context(*(escape(note) for note in diagnosis.notes[:NOTES_SHOWN])))
        overflow = overflow or len(diagnosis.notes) > NOTES_SHOWN
    buttons = suggestion_buttons(diagnosis, runbook)
    if buttons:
        blocks.append(divider())
        notes = sorted({s.note for s in diagnosis.suggestions if s.note})
        if notes:
            blocks.append(context(*notes[:NOTES_SHOWN]))
        blocks.append({"type": "actions", "block_id": f"next:{diagnosis.run_id}", "elements": buttons[:25]})
        overflow = overflow or len(notes) > NOTES_SHOWN or len(buttons) > 25
    return blocks, overflow


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


def full_output(diagnosis: Diagnosis, runbook: Runbook | None = None) -> str:
    """Everything the card shows or cut, uncut, as Markdown, for the file in the thread."""
    parts = [f"# {diagnosis.title} — {badge(diagnosis.overall)}", f"run {diagnosis.run_id}", ""]
    unseen = could_not_see(diagnosis)
    if unseen:
        parts += [f"Could not see: {', '.join(unseen)}", ""]
    for outcome in diagnosis.checks:
        parts.append(f"## {badge(outcome.status)} · {outcome.title}")
        if outcome.status == "unknown":
            parts.append(f"could not measure: {_reason(outcome)}")
        elif outcome.value is None and outcome.reason:
            parts.append(f"did not answer: {outcome.reason}")
        elif outcome.value is not None:
            parts.append(f"value: {value_words(outcome.value)}{(' ' + outcome.unit) if outcome.unit else ''}")
        if outcome.threshold:
            parts.append(f"thresholds: {outcome.threshold}")
        if outcome.result.error and outcome.result.error != outcome.reason:
            parts.append(f"probe error: {outcome.result.error}")
        if outcome.result.columns:
            parts += ["```", plain_table(outcome.result.columns, outcome.result.rows), "```"]
            if outcome.result.truncated:
                parts.append("(the probe's row cap was reached; more rows exist)")
        parts.append("")
    if runbook is not None and runbook.manual:
        parts += ["## Manual steps", *(f"- {step}" for step in runbook.manual), ""]
    if diagnosis.notes:
        parts += ["## Advice", *(f"- {note}" for note in diagnosis.notes), ""]
    if diagnosis.suggestions:
        parts.append("## Suggested next")
        parts += [f"- {s.kind} {s.ref}{(' — ' + s.note) if s.note else ''}" for s in diagnosis.suggestions]
        parts.append("")
    return "\n".join(parts)


def diagnosis_text(diagnosis: Diagnosis, *, unattended: bool = False) -> str:
    """Notification fallback text. An unattended run (a schedule, an alert) nobody is watching
    says loudly which checks it could not see."""
    text = f"{EMOJI[diagnosis.overall]} {diagnosis.title}: {LABEL[diagnosis.overall]}"
    unseen = could_not_see(diagnosis)
    if unattended and unseen:
        text += f" — ⚠️ could not see: {', '.join(unseen)}"
    return text

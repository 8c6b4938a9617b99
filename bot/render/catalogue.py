"""`/runbook list` and `/runbook show <id>`: the catalogue as people read it in Slack."""

from __future__ import annotations

from collections.abc import Mapping

from bot.mrkdwn import clip, escape
from bot.render.blocks import MAX_BLOCKS, SECTION_TEXT, Block, context, header, section
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.commands import runbook_usage
from bot.runbooks.model import Runbook

RISK_BADGE = {"read_only": "🟢 read-only", "low": "🟡 low", "high": "🟠 high", "critical": "🔴 critical"}


def approvals_wording(count: int) -> str:
    """The one way the number of approvals an action needs is said, on the form, the card, the
    requester's receipt and `/runbook show`: "Needs 2 approvals"."""
    return f"Needs {count} approval{'' if count == 1 else 's'}"


def list_blocks(catalogue: Catalogue) -> list[Block]:
    blocks: list[Block] = [header(f"Runbooks ({len(catalogue)})")]
    lines = []
    for runbook in sorted(catalogue, key=lambda r: r.id):
        invocation = runbook.command.text if runbook.command else f"/runbook run {runbook.id}"
        lines.append(
            f"• `{runbook.id}` — {escape(runbook.title)} · `{invocation}` · "
            f"{len(runbook.checks)} checks · {len(runbook.actions)} actions · {RISK_BADGE[runbook.max_risk]}"
        )
    chunk = ""
    for line in lines:
        if len(chunk) + len(line) + 1 > SECTION_TEXT:
            blocks.append(section(chunk))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        blocks.append(section(chunk))
    blocks.append(context("`/runbook show <id>` for details · `/runbook run <id> name=value` to run one"))
    return blocks[:MAX_BLOCKS]


def show_blocks(runbook: Runbook, approvals: Mapping[str, int] | None = None) -> list[Block]:
    """`/runbook show`; `approvals` is how many approvals each action id needs under the policy."""
    blocks: list[Block] = [
        header(runbook.title),
        section(f"{escape(runbook.summary)}\n\n*Usage:* {runbook_usage(runbook)}"),
        context(
            f"`{runbook.id}` v{runbook.version} · from {runbook.source.seed} — "
            f"{escape(runbook.source.section)}"
        ),
    ]
    if runbook.params:
        lines = [f"• `{p.name}` ({p.hint()}) {escape(p.description)}" for p in runbook.params]
        blocks.append(section(clip("*Parameters*\n" + "\n".join(lines), SECTION_TEXT)))
    if runbook.checks:
        lines = [
            f"• *{escape(c.title)}*" + (f" — {c.threshold_text()}" if c.threshold_text() else "")
            for c in runbook.checks
        ]
        blocks.append(section(clip("*Checks*\n" + "\n".join(lines), SECTION_TEXT)))
    if runbook.actions:
        lines = [
            f"• *{escape(a.title)}* — {RISK_BADGE[a.risk]}"
            + (
                f" · {approvals_wording((approvals or {}).get(a.id, a.needs_approvals or 1))}"
                if a.risk != "read_only"
                else ""
            )
            for a in runbook.actions
        ]
        blocks.append(section(clip("*Actions*\n" + "\n".join(lines), SECTION_TEXT)))
    if runbook.manual:
        blocks.append(
            section(
                clip("*Manual steps*\n" + "\n".join(f"• {escape(s)}" for s in runbook.manual), SECTION_TEXT)
            )
        )
    if runbook.schedule:
        blocks.append(
            context(f"Runs on schedule `{runbook.schedule.cron}` (UTC) in #{runbook.schedule.channel}")
        )
    return blocks[:MAX_BLOCKS]

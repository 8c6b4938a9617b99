"""The alert group's card: what fires, how bad, since when, who has it, and its buttons.

Labels and annotations are hostile input (anyone who can make Prometheus fire writes them): every
value shown in mrkdwn goes through `escape`, and a `runbook_url` becomes a link only when it is a
plain http(s) URL. The card is a pure function of the stored group, so its hash tells whether a
notification changed anything a person would see (`card_hash`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime

from bot.alerts.store import AlertGroup
from bot.mrkdwn import clip, escape
from bot.render.blocks import Block, context, header, section

ACK = "alert_ack"
DECLARE = "alert_declare"
ATTACH = "alert_attach"
SILENCE = "alert_silence"  # alert_silence:1h | :4h | :resolved
EXPIRE = "alert_expire_silence"
SILENCE_CHOICES = {"1h": "Silence 1 h", "4h": "Silence 4 h", "resolved": "Silence until resolved"}
ACTION_IDS = re.compile(rf"^({ACK}|{DECLARE}|{ATTACH}|{EXPIRE}|{SILENCE}:(1h|4h|resolved))$")
# Labels that say which alert it is are in the title; these would only repeat it.
_TITLE_LABELS = ("alertname", "severity")
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]{1,500}")
MAX_LABELS = 10


@dataclass(frozen=True)
class AlertCard:
    """What the card shows beyond the stored group: counts, and whether Silence can be offered."""

    group: AlertGroup
    firing: int
    resolved: int
    silence_offered: bool


def title(group: AlertGroup) -> str:
    """`alertname — summary`, from the group's labels and annotations (raw: escape before mrkdwn)."""
    labels = group.common_labels or group.group_labels
    name = labels.get("alertname") or "Alert"
    summary = group.common_annotations.get("summary")
    return clip(f"{name} — {summary}" if summary else name, 140)


def card_text(group: AlertGroup) -> str:
    severity = f" {group.severity.upper()}" if group.severity else ""
    return f"{_status_emoji(group)} {group.status.upper()}{severity}: {escape(title(group))}"


def card(view: AlertCard) -> list[Block]:
    group = view.group
    blocks: list[Block] = [header(f"{_status_emoji(group)} {group.status.upper()} · {title(group)}")]
    description = group.common_annotations.get("description")
    if description:
        blocks.append(section(escape(clip(description, 800))))
    blocks.append(_fields(view))
    labels = _labels(group)
    if labels:
        blocks.append(context(labels))
    lines = _state_lines(group)
    if lines:
        blocks.append(section("\n".join(lines)))
    buttons = _buttons(view)
    if buttons:
        blocks.append({"type": "actions", "block_id": f"alert:{group.id}", "elements": buttons})
    return blocks


def card_hash(text: str, blocks: list[Block]) -> str:
    return hashlib.sha256(json.dumps([text, blocks], sort_keys=True).encode()).hexdigest()


def resolved_line(group: AlertGroup) -> str:
    return f"✅ Resolved after {duration(group)}"


def duration(group: AlertGroup) -> str:
    start = group.starts_at or group.first_seen
    end = group.resolved_at or group.last_change
    minutes = max(int((end - start).total_seconds() // 60), 0)
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if hours else f"{rest} min"


def when(at: datetime) -> str:
    """A time every reader sees in their own zone (Slack's date token), with a UTC fallback."""
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def _status_emoji(group: AlertGroup) -> str:
    if group.status == "resolved":
        return "✅"
    return "🔴" if group.severity in ("p0", "p1") else "🟠"


def _fields(view: AlertCard) -> Block:
    group = view.group
    label_severity = (group.common_labels or group.group_labels).get("severity")
    severity = group.severity.upper() if group.severity else "—"
    if label_severity:
        severity += f" (`{escape(clip(label_severity, 40))}`)"
    fields = [
        f"*Status*\n{group.status}",
        f"*Severity*\n{severity}",
        f"*Alerts*\n{view.firing} firing · {view.resolved} resolved",
        f"*Runbook*\n{_runbook(group)}",
        f"*First seen*\n{when(group.starts_at or group.first_seen)}",
        f"*Last change*\n{when(group.last_change)}",
    ]
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": text} for text in fields]}


def _runbook(group: AlertGroup) -> str:
    url = group.common_annotations.get("runbook_url", "")
    link = f" · <{url}|runbook>" if _PLAIN_URL.fullmatch(url) else ""
    if group.runbook_id:
        return f"`{group.runbook_id}` (diagnosis in the thread){link}"
    return f"none routed{link}"


def _labels(group: AlertGroup) -> str:
    labels = {**group.group_labels, **group.common_labels}
    shown = [
        f"`{escape(clip(name, 60))}={escape(clip(value, 120))}`"
        for name, value in sorted(labels.items())
        if name not in _TITLE_LABELS
    ]
    more = f" and {len(shown) - MAX_LABELS} more" if len(shown) > MAX_LABELS else ""
    return " ".join(shown[:MAX_LABELS]) + more


def _state_lines(group: AlertGroup) -> list[str]:
    lines = []
    if group.status == "resolved":
        lines.append(resolved_line(group))
    if group.incident_id:
        where = f" — <#{group.incident_channel}>" if group.incident_channel else ""
        lines.append(f"🚨 Incident *{group.incident_id}*{where}")
    if group.acked_by and group.acked_at:
        lines.append(f"👀 Acknowledged by <@{group.acked_by}> {when(group.acked_at)}")
    if group.silence_id:
        until = "until resolved" if group.silence_until_resolved else ""
        if group.silence_until and not group.silence_until_resolved:
            until = f"until {when(group.silence_until)}"
        lines.append(f"🔕 Silenced by {escape(group.silenced_by or 'someone')} {until}".rstrip())
    if group.flapping:
        lines.append("〰️ Flapping: too many changes in 10 min, so the thread gets no more replies for now")
    return lines


def _buttons(view: AlertCard) -> list[Block]:
    group = view.group
    buttons: list[Block] = []
    if group.status == "firing" and group.incident_id is None:
        if group.declare != "never":
            buttons.append(_button(DECLARE, f"Declare {(group.severity or 'p2').upper()}", group, "danger"))
        if group.attach_offer:
            buttons.append(_button(ATTACH, f"Attach to {group.attach_offer}", group))
    if group.status == "firing" and group.acked_by is None:
        buttons.append(_button(ACK, "Acknowledge", group, "primary"))
    if group.silence_id:
        buttons.append(_button(EXPIRE, "Expire silence", group))
    elif group.status == "firing" and view.silence_offered:
        buttons += [_button(f"{SILENCE}:{key}", label, group) for key, label in SILENCE_CHOICES.items()]
    return buttons


def _button(action_id: str, label: str, group: AlertGroup, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "action_id": action_id,
        "value": json.dumps({"group": group.id}),
        "text": {"type": "plain_text", "text": clip(label, 75)},
    }
    if style:
        button["style"] = style
    return button

"""The incident card, topic, announcement, list and timeline as Slack shows them."""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.incidents.duration import elapsed as elapsed  # the review's duration is the same
from bot.incidents.severity import SEVERITIES, SYMPTOM_RUNBOOKS
from bot.incidents.store import Incident, TimelineEvent
from bot.mrkdwn import clip, escape
from bot.render.blocks import Block, context, header, section

RUN_DIAGNOSIS = "incident_diagnose"
POST_UPDATE = "incident_update"
RESOLVE = "incident_resolve"
CLAIM = "incident_claim"
SNOOZE = "incident_snooze"
PAGE = "incident_page"
REVIEW = "incident_review"
UPDATE_VIEW = "incident_update_view"
RESOLVE_VIEW = "incident_resolve_view"
DECLARE_VIEW = "incident_declare_view"
_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,20})(?:\|[^>]*)?>")


def _who(user: str | None) -> str:
    return f"<@{user}>" if user else "_unassigned_"


def topic(incident: Incident) -> str:
    return clip(
        f"{incident.severity.upper()} · {incident.status} · IC {_who(incident.commander)} · {incident.title}",
        250,
    )


def card(incident: Incident, *, open_approvals: int = 0) -> list[Block]:
    severity = SEVERITIES[incident.severity]
    blocks: list[Block] = [
        header(f"{severity.emoji} {incident.severity.upper()} · {incident.id} · {incident.title}"),
        _card_fields(incident),
    ]
    if incident.service or incident.security_sensitive or incident.symptom:
        parts = [
            f"*Service:* {escape(incident.service)}" if incident.service else "",
            f"*Symptom:* {escape(incident.symptom)}" if incident.symptom else "",
            "🔒 *Security-sensitive*: do not restart services (preserves evidence)"
            if incident.security_sensitive
            else "",
        ]
        blocks.append(section("\n".join(p for p in parts if p)))
    if incident.last_update:
        stamp = f"{incident.last_update_at:%H:%M} UTC" if incident.last_update_at else ""
        blocks.append(section(f"*Last update* ({stamp}): {escape(clip(incident.last_update, 1500))}"))
    if incident.status == "resolved":
        blocks.append(
            section(
                f"✅ *Resolved* by {_who(incident.resolved_by)}: {escape(incident.summary or '')}\n"
                f"*Root cause:* {escape(incident.root_cause or 'not recorded')}"
            )
        )
    notes = [f"Declared by {_who(incident.declared_by)} at {incident.declared_at:%Y-%m-%d %H:%M} UTC"]
    if open_approvals:
        notes.append(f"{open_approvals} approval request(s) waiting")
    blocks.append(context(" · ".join(notes)))
    if incident.status != "resolved":
        blocks.append(_card_buttons(incident))
    return blocks


def _card_fields(incident: Incident) -> Block:
    severity = SEVERITIES[incident.severity]
    lasted = "Lasted" if incident.status == "resolved" else "Elapsed"
    fields = [
        f"*Status*\n{incident.status}",
        f"*Severity*\n{severity.label} (respond within {severity.respond_within})",
        f"*Commander*\n{_who(incident.commander)}",
        f"*Comms lead*\n{_who(incident.comms_lead)}",
        f"*Scribe*\n{_who(incident.scribe)}",
        f"*{lasted}*\n{elapsed(incident.declared_at, incident.resolved_at)}",
    ]
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": text} for text in fields]}


_CARD_BUTTONS = (
    (RUN_DIAGNOSIS, "Run diagnosis", "primary"),
    (PAGE, "Page on-call", None),
    (POST_UPDATE, "Post update", None),
    (f"{CLAIM}:comms", "Claim comms", None),
    (f"{CLAIM}:scribe", "Claim scribe", None),
    (RESOLVE, "Resolve", "danger"),
)


def _card_buttons(incident: Incident) -> Block:
    elements: list[Block] = []
    for action_id, label, style in _CARD_BUTTONS:
        button: Block = {
            "type": "button",
            "action_id": action_id,
            "value": incident.id,
            "text": {"type": "plain_text", "text": label},
        }
        if style:
            button["style"] = style
        elements.append(button)
    return {"type": "actions", "block_id": f"incident:{incident.id}", "elements": elements}


def card_text(incident: Incident) -> str:
    """The card's notification text: mrkdwn, so the title is escaped (it must not ping @here)."""
    severity = SEVERITIES[incident.severity]
    return f"{severity.emoji} {incident.severity.upper()} {incident.id}: {escape(incident.title)}"


def announcement(incident: Incident) -> str:
    return (
        f"{SEVERITIES[incident.severity].emoji} INCIDENT DECLARED: {incident.severity.upper()} · "
        f"{escape(incident.title)} — <#{incident.channel_id}> · IC {_who(incident.commander)} · {incident.id}"
    )


def severity_change(before: Incident, after: Incident, by: str) -> str:
    """#incident-response: `old → new, by whom`, raising or lowering."""
    raised = before.severity > after.severity  # p0 is the most severe
    verb = "raised" if raised else "lowered"
    emoji = SEVERITIES[after.severity].emoji
    return (
        f"{emoji} {after.id} severity {verb}: {before.severity.upper()} → {after.severity.upper()}, "
        f"by <@{by}> · {escape(after.title)} — <#{after.channel_id}>"
    )


def list_text(incidents: list[Incident]) -> str:
    if not incidents:
        return "No open incidents. 🎉"
    return "\n".join(
        f"• {SEVERITIES[i.severity].emoji} *{i.id}* {i.severity.upper()} {escape(i.title)} — {i.status}, "
        f"{elapsed(i.declared_at)} · IC {_who(i.commander)} · <#{i.channel_id}>"
        for i in incidents
    )


def timeline_text(
    incident: Incident, events: list[TimelineEvent], names: Mapping[str, str] | None = None
) -> str:
    """One line per entry; with `names` (user id → name) people read names, not `<@U…>` ids."""
    names = names or {}

    def named(text: str) -> str:
        return _MENTION.sub(lambda m: "@" + names.get(m.group(1), m.group(1)), text) if names else text

    def who(user: str | None) -> str:
        return "@" + escape(names[user]) if user is not None and user in names else _who(user)

    lines = [f"*Timeline of {incident.id}* ({len(events)} entries)"]
    lines += [
        f"`{e.at:%H:%M}` {escape(named(e.text))}" + (f" — {who(e.actor)}" if e.actor else "") for e in events
    ]
    return clip("\n".join(lines), 2900)


def text_modal(
    callback_id: str, title: str, label: str, metadata: str, submit: str, initial: str = ""
) -> dict[str, object]:
    element: dict[str, object] = {
        "type": "plain_text_input",
        "action_id": "text",
        "multiline": True,
        "max_length": 2000,
    }
    if initial:
        element["initial_value"] = initial
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "private_metadata": metadata,
        "blocks": [
            {
                "type": "input",
                "block_id": "text",
                "label": {"type": "plain_text", "text": label},
                "element": element,
            }
        ],
    }


def resolve_modal(metadata: str, *, summary: str, root_cause: str) -> dict[str, object]:
    """Two answers, not one: how it was resolved, and what caused it (prefilled when known)."""

    def text(action_id: str, initial: str) -> dict[str, object]:
        element: dict[str, object] = {
            "type": "plain_text_input",
            "action_id": action_id,
            "multiline": True,
            "max_length": 2000,
        }
        if initial:
            element["initial_value"] = initial[:2000]
        return element

    return {
        "type": "modal",
        "callback_id": RESOLVE_VIEW,
        "title": {"type": "plain_text", "text": "Resolve incident"},
        "submit": {"type": "plain_text", "text": "Resolve"},
        "private_metadata": metadata,
        "blocks": [
            _input("summary", "How was it resolved?", text("summary", summary)),
            _input("root_cause", "Root cause", text("root_cause", root_cause)),
        ],
    }


def _input(block_id: str, label: str, element: dict[str, object], *, optional: bool = False) -> Block:
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": label},
        "element": element,
    }
    if optional:
        block["optional"] = True
    return block


def _symptom_select() -> dict[str, object]:
    options = [
        {"text": {"type": "plain_text", "text": f"{name} · {runbook}"}, "value": name}
        for name, runbook in SYMPTOM_RUNBOOKS.items()
    ]
    return {"type": "static_select", "action_id": "symptom", "options": options}


def declare_modal(severity: str | None, title: str, metadata: str) -> dict[str, object]:
    options = [
        {"text": {"type": "plain_text", "text": f"{s.name.upper()} · {s.label}"}, "value": s.name}
        for s in SEVERITIES.values()
    ]
    severity_element: dict[str, object] = {
        "type": "static_select",
        "action_id": "severity",
        "options": options,
    }
    if severity in SEVERITIES:
        severity_element["initial_option"] = next(o for o in options if o["value"] == severity)
    title_element: dict[str, object] = {"type": "plain_text_input", "action_id": "title", "max_length": 150}
    if title:
        title_element["initial_value"] = title[:150]
    security: dict[str, object] = {
        "type": "checkboxes",
        "action_id": "security",
        "options": [
            {
                "text": {"type": "plain_text", "text": "Security-sensitive (freeze restarts, keep evidence)"},
                "value": "yes",
            }
        ],
    }
    return {
        "type": "modal",
        "callback_id": DECLARE_VIEW,
        "title": {"type": "plain_text", "text": "Declare an incident"},
        "submit": {"type": "plain_text", "text": "Declare"},
        "private_metadata": metadata,
        "blocks": [
            _input("severity", "Severity", severity_element),
            _input("title", "What is happening?", title_element),
            _input(
                "service",
                "Affected service",
                {"type": "plain_text_input", "action_id": "service", "max_length": 80},
                optional=True,
            ),
            _input("symptom", "Symptom (picks the diagnosis)", _symptom_select(), optional=True),
            _input("security", "Security", security, optional=True),
        ],
    }

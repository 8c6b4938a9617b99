"""The incident card, topic, announcement, list and timeline as Slack shows them."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.incidents.severity import SEVERITIES
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
SNOOZE = "incident_snooze"
PAGE = "incident_page"
REVIEW = "incident_review"
UPDATE_VIEW = "incident_update_view"
RESOLVE_VIEW = "incident_resolve_view"
DECLARE_VIEW = "incident_declare_view"


def elapsed(since: datetime, until: datetime | None = None) -> str:
    seconds = int(((until or datetime.now(UTC)) - since).total_seconds())
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m"


def _who(user: str | None) -> str:
    return f"<@{user}>" if user else "_unassigned_"


def topic(incident: Incident) -> str:
    return clip(
        f"{incident.severity.upper()} · {incident.status} · IC {_who(incident.commander)} · {incident.title}",
        250,
    )


def card(incident: Incident, *, open_approvals: int = 0) -> list[Block]:
    severity = SEVERITIES[incident.severity]
    resolved = incident.status == "resolved"
    blocks: list[Block] = [
        header(f"{severity.emoji} {incident.severity.upper()} · {incident.id} · {incident.title}"),
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Status*\n{incident.status}"},
                {
                    "type": "mrkdwn",
                    "text": f"*Severity*\n{severity.label} (respond within {severity.respond_within})",
                },
                {"type": "mrkdwn", "text": f"*Commander*\n{_who(incident.commander)}"},
                {"type": "mrkdwn", "text": f"*Comms lead*\n{_who(incident.comms_lead)}"},
                {"type": "mrkdwn", "text": f"*Scribe*\n{_who(incident.scribe)}"},
                {
                    "type": "mrkdwn",
                    "text": f"*{'Lasted' if resolved else 'Elapsed'}*\n"
                    f"{elapsed(incident.declared_at, incident.resolved_at)}",
                },
            ],
        },
    ]
    if incident.service or incident.security_sensitive:
        parts = [
            f"*Service:* {escape(incident.service)}" if incident.service else "",
            "🔒 *Security-sensitive*: do not restart services (preserves evidence)"
            if incident.security_sensitive
            else "",
        ]
        blocks.append(section("\n".join(p for p in parts if p)))
    if incident.last_update:
        stamp = f"{incident.last_update_at:%H:%M} UTC" if incident.last_update_at else ""
        blocks.append(section(f"*Last update* ({stamp}): {escape(clip(incident.last_update, 1500))}"))
    if resolved:
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
    if not resolved:
        value = incident.id
        blocks.append(
            {
                "type": "actions",
                "block_id": f"incident:{incident.id}",
                "elements": [
                    {
                        "type": "button",
                        "action_id": RUN_DIAGNOSIS,
                        "value": value,
                        "style": "primary",
                        "text": {"type": "plain_text", "text": "Run diagnosis"},
                    },
                    {
                        "type": "button",
                        "action_id": PAGE,
                        "value": value,
                        "text": {"type": "plain_text", "text": "Page on-call"},
                    },
                    {
                        "type": "button",
                        "action_id": POST_UPDATE,
                        "value": value,
                        "text": {"type": "plain_text", "text": "Post update"},
                    },
                    {
                        "type": "button",
                        "action_id": f"{CLAIM}:comms",
                        "value": value,
                        "text": {"type": "plain_text", "text": "Claim comms"},
                    },
                    {
                        "type": "button",
                        "action_id": f"{CLAIM}:scribe",
                        "value": value,
                        "text": {"type": "plain_text", "text": "Claim scribe"},
                    },
                    {
                        "type": "button",
                        "action_id": RESOLVE,
                        "value": value,
                        "style": "danger",
                        "text": {"type": "plain_text", "text": "Resolve"},
                    },
                ],
            }
        )
    return blocks


def card_text(incident: Incident) -> str:
    """The card's notification text: mrkdwn, so the title is escaped (it must not ping @here)."""
    severity = SEVERITIES[incident.severity]
    return f"{severity.emoji} {incident.severity.upper()} {incident.id}: {escape(incident.title)}"


def announcement(incident: Incident) -> str:
    return (
        f"{SEVERITIES[incident.severity].emoji} INCIDENT DECLARED: {incident.severity.upper()} · "
        f"{escape(incident.title)} — <#{incident.channel_id}> · IC {_who(incident.commander)} · {incident.id}"
    )


def list_text(incidents: list[Incident]) -> str:
    if not incidents:
        return "No open incidents. 🎉"
    return "\n".join(
        f"• {SEVERITIES[i.severity].emoji} *{i.id}* {i.severity.upper()} {escape(i.title)} — {i.status}, "
        f"{elapsed(i.declared_at)} · IC {_who(i.commander)} · <#{i.channel_id}>"
        for i in incidents
    )


def timeline_text(incident: Incident, events: list[TimelineEvent]) -> str:
    lines = [f"*Timeline of {incident.id}* ({len(events)} entries)"]
    lines += [f"`{e.at:%H:%M}` {escape(e.text)}" + (f" — {_who(e.actor)}" if e.actor else "") for e in events]
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
    return {
        "type": "modal",
        "callback_id": DECLARE_VIEW,
        "title": {"type": "plain_text", "text": "Declare an incident"},
        "submit": {"type": "plain_text", "text": "Declare"},
        "private_metadata": metadata,
        "blocks": [
            {
                "type": "input",
                "block_id": "severity",
                "label": {"type": "plain_text", "text": "Severity"},
                "element": severity_element,
            },
            {
                "type": "input",
                "block_id": "title",
                "label": {"type": "plain_text", "text": "What is happening?"},
                "element": title_element,
            },
            {
                "type": "input",
                "block_id": "service",
                "optional": True,
                "label": {"type": "plain_text", "text": "Affected service"},
                "element": {"type": "plain_text_input", "action_id": "service", "max_length": 80},
            },
            {
                "type": "input",
                "block_id": "security",
                "optional": True,
                "label": {"type": "plain_text", "text": "Security"},
                "element": {
                    "type": "checkboxes",
                    "action_id": "security",
                    "options": [
                        {
                            "text": {
                                "type": "plain_text",
                                "text": "Security-sensitive (freeze restarts, keep evidence)",
                            },
                            "value": "yes",
                        }
                    ],
                },
            },
        ],
    }

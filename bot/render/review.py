"""The review draft's Slack side: the "draft attached" message with its buttons, and the edit form."""

from __future__ import annotations

from typing import Any

from bot.incidents.store import Incident
from bot.postmortem.facts import Edits
from bot.render.blocks import Block

REGENERATE = "review_regenerate"
EDIT = "review_edit"
EDIT_VIEW = "review_edit_view"
FIELDS = (
    ("summary", "Summary"),
    ("impact", "Impact (anything beyond duration and services)"),
    ("users_affected", "Users affected"),
    ("root_cause", "Root cause"),
)


def published_text(incident: Incident, version: int, by: str, missing: list[str]) -> str:
    still = f"Still to fill: {', '.join(missing)}." if missing else "Every section has data."
    return (
        f"📝 Review draft v{version} for {incident.id} by <@{by}> is attached. {still} "
        "Edit the summary, impact or root cause and they stay in every later version."
    )


def published_blocks(incident: Incident, version: int, text: str) -> list[Block]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "actions",
            "block_id": f"review:{incident.id}:{version}",
            "elements": [
                {
                    "type": "button",
                    "action_id": EDIT,
                    "value": incident.id,
                    "text": {"type": "plain_text", "text": "Edit summary, impact, root cause"},
                },
                {
                    "type": "button",
                    "action_id": REGENERATE,
                    "value": incident.id,
                    "text": {"type": "plain_text", "text": "Regenerate"},
                },
            ],
        },
    ]


def edit_modal(incident: Incident, edits: Edits) -> dict[str, Any]:
    blocks = []
    for name, label in FIELDS:
        element: dict[str, Any] = {
            "type": "plain_text_input",
            "action_id": name,
            "multiline": name != "users_affected",
            "max_length": 2000,
        }
        current = getattr(edits, name)
        if current:
            element["initial_value"] = current
        blocks.append(
            {
                "type": "input",
                "block_id": name,
                "optional": True,
                "label": {"type": "plain_text", "text": label},
                "element": element,
            }
        )
    return {
        "type": "modal",
        "callback_id": EDIT_VIEW,
        "private_metadata": incident.id,
        "title": {"type": "plain_text", "text": "Edit the review"},
        "submit": {"type": "plain_text", "text": "Save & regenerate"},
        "blocks": blocks,
    }


def edits_from(values: dict[str, Any]) -> Edits:
    """The edit form's submitted state as `Edits` (blank fields are None)."""
    return Edits(
        **{name: ((values.get(name) or {}).get(name) or {}).get("value") or None for name, _ in FIELDS}
    )

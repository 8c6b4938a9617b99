"""Block Kit building blocks that can never exceed Slack's per-element limits.

Every builder truncates at the limit Slack enforces (with an ellipsis) instead of letting a
message be rejected with `invalid_blocks` in the middle of an incident.
"""

from __future__ import annotations

from typing import Any

from bot.mrkdwn import clip

MAX_BLOCKS = 50
SECTION_TEXT = 3000
HEADER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ACTION_ID = 255
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25

Block = dict[str, Any]


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, HEADER_TEXT), "emoji": True}}


def section(mrkdwn: str, *, block_id: str | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": clip(mrkdwn, SECTION_TEXT)}}
    if block_id:
        block["block_id"] = clip(block_id, ACTION_ID)
    return block


def context(*mrkdwn: str) -> Block:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": clip(t, SECTION_TEXT)} for t in mrkdwn[:CONTEXT_ELEMENTS]],
    }


def divider() -> Block:
    return {"type": "divider"}

"""Turns text/blocks/attachments arguments into message content, enforcing Slack's message rules."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from localslack.blockkit import assign_ids, validate_blocks
from localslack.errors import SlackError
from localslack.model import JSON

MAX_TEXT = 40_000
MAX_ATTACHMENTS = 100


@dataclass(frozen=True)
class Content:
    text: str
    blocks: list[JSON] | None
    attachments: list[JSON] | None


def decode_json(value: Any, code: str) -> Any:
    """Form and query encodings carry structured arguments as JSON strings."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise SlackError(code) from None
    return value


def compose(text: Any, blocks: Any, attachments: Any, *, require_content: bool = True) -> Content:
    parsed_blocks: list[JSON] | None = None
    if blocks is not None and blocks != "":
        parsed = decode_json(blocks, "invalid_blocks_format")
        if not isinstance(parsed, list):
            raise SlackError("invalid_blocks_format")
        errors = validate_blocks(parsed)
        if errors:
            raise SlackError("invalid_blocks", errors=errors, messages=[f"[ERROR] {e}" for e in errors])
        parsed_blocks = assign_ids(parsed)
    parsed_attachments: list[JSON] | None = None
    if attachments is not None and attachments != "":
        parsed_att = decode_json(attachments, "invalid_attachments")
        if not isinstance(parsed_att, list):
            raise SlackError("invalid_attachments")
        if len(parsed_att) > MAX_ATTACHMENTS:
            raise SlackError("too_many_attachments")
        parsed_attachments = parsed_att
    body = "" if text is None else str(text)
    if require_content and not body and not parsed_blocks and not parsed_attachments:
        raise SlackError("no_text")
    if len(body) > MAX_TEXT:
        raise SlackError("msg_too_long")
    return Content(text=body, blocks=parsed_blocks, attachments=parsed_attachments)

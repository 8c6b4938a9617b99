"""Applies a message response (ack body or response_url post) to the workspace as Slack renders it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from localslack.compose import compose
from localslack.errors import SlackError
from localslack.model import JSON, Ephemeral, Message
from localslack.state import Workspace


class MessageResponse(BaseModel):
    """Body of a response_url post or of a slash command ack."""

    model_config = ConfigDict(extra="allow")

    text: str | None = None
    blocks: Any = None
    attachments: Any = None
    response_type: Literal["ephemeral", "in_channel"] | None = None
    replace_original: bool | None = None
    delete_original: bool | None = None
    thread_ts: str | None = None
    metadata: JSON | None = None


@dataclass(frozen=True)
class ResponseTarget:
    """Where a response lands: the user who acted, their channel, and the message they acted on."""

    channel: str
    user: str
    source: Message | Ephemeral | None = None


def parse_ack_body(body: bytes | str, content_type: str = "") -> JSON | None:
    """An HTTP ack body as Slack reads it: JSON when it parses as an object, plain text otherwise."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if not text.strip():
        return None
    if "json" in content_type or text.lstrip().startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {"text": text}


def apply_response(state: Workspace, target: ResponseTarget, raw: JSON) -> Message | Ephemeral | None:
    """Returns what was posted or replaced; None for a deletion."""
    resp = MessageResponse.model_validate(raw)
    source = target.source
    if resp.delete_original:
        if source is None:
            raise SlackError("no_original_message")
        _delete(state, source)
        return None
    content = compose(resp.text, resp.blocks, resp.attachments)
    if resp.replace_original and source is not None:
        if isinstance(source, Ephemeral) and source.deleted:
            raise SlackError("message_not_found")
        source.text, source.blocks, source.attachments = content.text, content.blocks, content.attachments
        return source
    channel = state.channel(target.channel)
    if resp.response_type == "in_channel":
        return state.add_message(
            channel,
            user=state.bot_user_id,
            text=content.text,
            blocks=content.blocks,
            attachments=content.attachments,
            thread_ts=resp.thread_ts,
            metadata=resp.metadata,
        )
    return state.add_ephemeral(
        channel,
        target.user,
        text=content.text,
        blocks=content.blocks,
        attachments=content.attachments,
        thread_ts=resp.thread_ts,
    )


def _delete(state: Workspace, source: Message | Ephemeral) -> None:
    if isinstance(source, Ephemeral):
        source.deleted = True
        return
    channel = state.channel(source.channel)
    if source.ts not in channel.messages:
        raise SlackError("message_not_found")
    state.delete_message(channel, source)

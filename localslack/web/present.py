"""The web client's JSON shapes for users, channels, messages, files and views, as one user sees them."""

from __future__ import annotations

from urllib.parse import quote

from localslack.model import JSON, Channel, Ephemeral, File, Message, User, View
from localslack.state import Workspace
from localslack.web.preview import markdown_html, preview_html


def user_json(user: User) -> JSON:
    return {
        "id": user.id,
        "name": user.name,
        "real_name": user.real_name,
        "display_name": user.display_name,
        "title": user.title,
        "is_bot": user.is_bot,
    }


def channel_json(state: Workspace, ch: Channel, viewer: User) -> JSON:
    """`label` is what the sidebar shows: the channel name, or for a DM the other person's name."""
    label = ch.name
    if ch.is_im:
        other = next((m for m in ch.members if m != viewer.id), viewer.id)
        label = state.users[other].name if other in state.users else other
    return {
        "id": ch.id,
        "name": ch.name,
        "label": label,
        "topic": ch.topic.get("value", ""),
        "purpose": ch.purpose.get("value", ""),
        "is_private": ch.is_private,
        "is_im": ch.is_im,
        "is_archived": ch.is_archived,
        "is_member": viewer.id in ch.members,
        "pin_count": sum(1 for p in ch.pins if p.ts in ch.messages),
    }


def _author(state: Workspace, user_id: str | None, username: str | None = None) -> JSON:
    user = state.users.get(user_id or "")
    name = user.name if user else (user_id or "unknown")
    label = username or (user.real_name or user.name if user else name)
    return {"id": user_id, "name": name, "label": label, "is_bot": bool(user and user.is_bot)}


def file_json(file: File) -> JSON:
    return {
        "id": file.id,
        "name": file.name,
        "title": file.title,
        "filetype": file.filetype,
        "mimetype": file.mimetype,
        "size": file.size,
        "url": f"/ui/files/{file.id}/{quote(file.name)}",
        "preview_html": preview_html(file),
    }


def blocks_json(blocks: list[JSON] | None) -> list[JSON]:
    """Markdown blocks carry standard Markdown, which the server renders (the page has no parser for it)."""
    return [
        {**b, "html": markdown_html(str(b.get("text", "")))} if b.get("type") == "markdown" else b
        for b in blocks or []
    ]


def message_json(state: Workspace, ch: Channel, msg: Message) -> JSON:
    replies = state.replies(msg) if msg.replies else []
    author = _author(state, msg.user, msg.username)
    return {
        "ts": msg.ts,
        "thread_ts": msg.thread_ts,
        "is_reply": msg.is_reply,
        "user": author["name"],
        "author": author,
        "text": msg.text,
        "blocks": blocks_json(msg.blocks),
        "attachments": msg.attachments or [],
        "files": [file_json(f) for f in msg.files],
        "reactions": [r.to_api() for r in msg.reactions],
        "pinned": ch.id in msg.pinned_to,
        "reply_count": len(replies),
        "reply_users": msg.reply_users(replies),
        "latest_reply": replies[-1].ts if replies else None,
        "edited": msg.edited is not None,
        "subtype": msg.subtype,
        "ephemeral": False,
    }


def ephemeral_json(state: Workspace, eph: Ephemeral) -> JSON:
    """Ephemeral messages come from the app; `ephemeral_id` addresses one for clicks."""
    author = _author(state, state.bot_user_id)
    return {
        "ts": eph.ts,
        "ephemeral_id": eph.ts,
        "thread_ts": eph.thread_ts,
        "is_reply": eph.thread_ts is not None,
        "user": author["name"],
        "author": author,
        "text": eph.text,
        "blocks": blocks_json(eph.blocks),
        "attachments": eph.attachments or [],
        "files": [],
        "reactions": [],
        "pinned": False,
        "reply_count": 0,
        "reply_users": [],
        "latest_reply": None,
        "edited": False,
        "subtype": None,
        "ephemeral": True,
    }


def view_json(view: View, errors: dict[str, str]) -> JSON:
    return {
        "id": view.id,
        "hash": view.hash,
        "type": view.type,
        "callback_id": view.callback_id,
        "title": view.title,
        "submit": view.submit,
        "close": view.close,
        "blocks": blocks_json(view.blocks),
        "state_values": view.state_values,
        "errors": errors,
    }

"""chat.* methods: posting, editing, deleting, ephemeral messages and permalinks."""

from __future__ import annotations

import time

from localslack.compose import compose
from localslack.errors import SlackError
from localslack.model import JSON, Channel
from localslack.state import NotFound
from localslack.webapi.registry import Call, api_method


def _post_target(call: Call) -> Channel:
    """A user id as channel means the bot's DM with that user, as in Slack."""
    ref = call.need("channel", "channel_not_found")
    if ref[:1] in ("U", "W") and ref in call.state.users:
        return call.state.im_channel(ref)
    ch = call.channel()
    if ch.is_archived:
        raise SlackError("is_archived")
    if call.actor not in ch.members:
        raise SlackError("not_in_channel")
    return ch


@api_method("chat.postMessage")
def post_message(call: Call) -> JSON:
    ch = _post_target(call)
    content = compose(call.args.get("text"), call.args.get("blocks"), call.args.get("attachments"))
    thread_ts = call.get("thread_ts") or None
    if thread_ts is not None and thread_ts not in ch.messages:
        raise SlackError("thread_not_found")
    metadata = call.structured("metadata", "invalid_metadata_format")
    msg = call.state.add_message(
        ch,
        user=call.actor,
        text=content.text,
        blocks=content.blocks,
        attachments=content.attachments,
        thread_ts=thread_ts,
        reply_broadcast=call.flag("reply_broadcast"),
        metadata=metadata if isinstance(metadata, dict) else None,
        username=call.get("username"),
    )
    return {"channel": ch.id, "ts": msg.ts, "message": call.state.api_message(msg)}


@api_method("chat.update")
def update(call: Call) -> JSON:
    ch = call.channel()
    msg = call.state.message(ch, call.need("ts", "message_not_found"))
    if msg.user != call.actor:
        raise SlackError("cant_update_message")
    has_text = call.args.get("text") not in (None, "")
    has_blocks = call.args.get("blocks") not in (None, "")
    has_attachments = call.args.get("attachments") not in (None, "")
    content = compose(
        call.args.get("text") if has_text else msg.text,
        call.args.get("blocks") if has_blocks else None,
        call.args.get("attachments") if has_attachments else None,
        require_content=not msg.files,
    )
    msg.text = content.text
    if has_blocks:
        msg.blocks = content.blocks
    if has_attachments:
        msg.attachments = content.attachments
    msg.edited = {"user": call.actor, "ts": call.state.ids.ts()}
    return {"channel": ch.id, "ts": msg.ts, "text": msg.text, "message": call.state.api_message(msg)}


@api_method("chat.delete")
def delete(call: Call) -> JSON:
    ch = call.channel()
    msg = call.state.message(ch, call.need("ts", "message_not_found"))
    if msg.user != call.actor:
        raise SlackError("cant_delete_message")
    call.state.delete_message(ch, msg)
    return {"channel": ch.id, "ts": msg.ts}


@api_method("chat.postEphemeral")
def post_ephemeral(call: Call) -> JSON:
    ch = call.channel()
    user = call.user()
    if user.id not in ch.members:
        raise SlackError("user_not_in_channel")
    content = compose(call.args.get("text"), call.args.get("blocks"), call.args.get("attachments"))
    eph = call.state.add_ephemeral(
        ch,
        user.id,
        text=content.text,
        blocks=content.blocks,
        attachments=content.attachments,
        thread_ts=call.get("thread_ts") or None,
    )
    return {"message_ts": eph.ts}


@api_method("chat.getPermalink")
def get_permalink(call: Call) -> JSON:
    ch = call.channel()
    ts = call.need("message_ts", "message_not_found")
    if ts not in ch.messages:
        raise NotFound("message_not_found", ts)
    link = f"https://{call.state.team_domain}.slack.com/archives/{ch.id}/p{ts.replace('.', '')}"
    msg = ch.messages[ts]
    if msg.is_reply:
        link += f"?thread_ts={msg.thread_ts}&cid={ch.id}"
    return {"channel": ch.id, "permalink": link, "generated_at": int(time.time())}

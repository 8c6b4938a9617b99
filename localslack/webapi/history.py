"""conversations.history and conversations.replies: time-window filtering and cursor paging."""

from __future__ import annotations

from localslack.errors import SlackError
from localslack.ids import ts_key
from localslack.model import JSON, Message
from localslack.webapi.paging import paginate
from localslack.webapi.registry import Call, api_method


def _window(call: Call, messages: list[Message]) -> list[Message]:
    """Applies oldest/latest; both bounds are exclusive unless `inclusive` is set, as Slack documents."""
    inclusive = call.flag("inclusive")
    oldest = call.get("oldest")
    latest = call.get("latest")
    out = messages
    if oldest:
        lo = ts_key(oldest)
        out = [m for m in out if ts_key(m.ts) > lo or (inclusive and ts_key(m.ts) == lo)]
    if latest:
        hi = ts_key(latest)
        out = [m for m in out if ts_key(m.ts) < hi or (inclusive and ts_key(m.ts) == hi)]
    return out


@api_method("conversations.history")
def history(call: Call) -> JSON:
    ch = call.channel(member=True)
    limit = call.number("limit", 100, high=999)
    newest_first = [ch.messages[ts] for ts in reversed(ch.timeline)]
    page, next_cursor = paginate(_window(call, newest_first), call.get("cursor"), limit, key=lambda m: m.ts)
    return {
        "messages": [call.state.api_message(m) for m in page],
        "has_more": bool(next_cursor),
        "pin_count": len(ch.pins),
        "channel_actions_ts": None,
        "channel_actions_count": 0,
        "response_metadata": {"next_cursor": next_cursor},
    }


@api_method("conversations.replies")
def replies(call: Call) -> JSON:
    ch = call.channel(member=True)
    ts = call.need("ts", "thread_not_found")
    msg = ch.messages.get(ts)
    if msg is None:
        raise SlackError("thread_not_found")
    parent = ch.messages[msg.thread_ts] if msg.is_reply and msg.thread_ts in ch.messages else msg
    thread = [parent, *call.state.replies(parent)]
    limit = call.number("limit", 1000, high=1000)
    page, next_cursor = paginate(_window(call, thread), call.get("cursor"), limit, key=lambda m: m.ts)
    return {
        "messages": [call.state.api_message(m) for m in page],
        "has_more": bool(next_cursor),
        "response_metadata": {"next_cursor": next_cursor},
    }

"""conversations.history and conversations.replies: time-window filtering and cursor paging."""

from __future__ import annotations

import re

from localslack.errors import SlackError
from localslack.ids import ts_key
from localslack.model import JSON, Message
from localslack.webapi.paging import paginate
from localslack.webapi.registry import Call, api_method

# Slack takes a bound as a message ts ("1712345678.000100") or as whole seconds ("1712345678").
_TS = re.compile(r"[0-9]+(\.[0-9]+)?")


def _bound(call: Call, name: str) -> tuple[int, int] | None:
    value = call.get(name)
    if not value:
        return None
    if not _TS.fullmatch(value):
        raise SlackError(f"invalid_ts_{name}")
    return ts_key(value)


def _window(call: Call, messages: list[Message]) -> list[Message]:
    """Applies oldest/latest; both bounds are exclusive unless `inclusive` is set, as Slack documents."""
    inclusive = call.flag("inclusive")
    lo = _bound(call, "oldest")
    hi = _bound(call, "latest")
    out = messages
    if lo is not None:
        out = [m for m in out if ts_key(m.ts) > lo or (inclusive and ts_key(m.ts) == lo)]
    if hi is not None:
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

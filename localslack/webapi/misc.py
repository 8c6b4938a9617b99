"""auth.test, bookmarks.* and apps.connections.open."""

from __future__ import annotations

from localslack.errors import SlackError
from localslack.model import JSON, Bookmark
from localslack.webapi.registry import Call, api_method


@api_method("auth.test")
def auth_test(call: Call) -> JSON:
    state = call.state
    return {
        "url": f"https://{state.team_domain}.slack.com/",
        "team": state.team_name,
        "user": state.app.bot_name,
        "team_id": state.team_id,
        "user_id": state.bot_user_id,
        "bot_id": state.bot_id,
        "app_id": state.app.app_id,
        "is_enterprise_install": False,
    }


@api_method("bookmarks.add")
def bookmarks_add(call: Call) -> JSON:
    ch = call.channel("channel_id", member=True)
    title = call.need("title")
    kind = call.need("type")
    if kind != "link":
        raise SlackError("invalid_bookmark_type")
    link = call.need("link", "invalid_link")
    if not link.startswith(("http://", "https://")):
        raise SlackError("invalid_link")
    bookmark = Bookmark(
        id=call.state.ids.new("Bk"),
        channel_id=ch.id,
        title=title,
        link=link,
        type=kind,
        created_by=call.actor,
        emoji=call.get("emoji"),
    )
    ch.bookmarks.append(bookmark)
    return {"bookmark": bookmark.to_api()}


@api_method("bookmarks.list")
def bookmarks_list(call: Call) -> JSON:
    ch = call.channel("channel_id")
    return {"bookmarks": [b.to_api() for b in ch.bookmarks]}


@api_method("apps.connections.open", token="app")  # noqa: S106 - a token kind, not a credential
def connections_open(call: Call) -> JSON:
    return {"url": call.core.sockets.issue_url(call.core.ws_base)}

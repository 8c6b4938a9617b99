"""users.* and usergroups.* methods."""

from __future__ import annotations

from localslack.errors import SlackError
from localslack.model import JSON, User
from localslack.webapi.paging import paginate
from localslack.webapi.registry import Call, api_method


def _by_id(call: Call) -> User:
    ref = call.need("user", "user_not_found")
    if ref not in call.state.users:
        raise SlackError("user_not_found")
    return call.state.users[ref]


@api_method("users.info")
def users_info(call: Call) -> JSON:
    user = _by_id(call)
    stranger = call.state.is_external(user) and not call.state.shares_channel_with_bot(user)
    return {"user": user.to_api(stranger=stranger)}


@api_method("users.profile.get")
def users_profile_get(call: Call) -> JSON:
    return {"profile": _by_id(call).profile_api()}


@api_method("users.list")
def users_list(call: Call) -> JSON:
    # Slack lists the workspace's own members; people from Slack Connect orgs are only in users.info.
    users = [u for u in call.state.users.values() if not call.state.is_external(u)]
    page, next_cursor = paginate(
        users, call.get("cursor"), call.number("limit", 200, high=1000), key=lambda u: u.id
    )
    return {
        "members": [u.to_api() for u in page],
        "cache_ts": 0,
        "response_metadata": {"next_cursor": next_cursor},
    }


@api_method("users.lookupByEmail")
def lookup_by_email(call: Call) -> JSON:
    email = call.need("email", "users_not_found").lower()
    for u in call.state.users.values():
        if u.email.lower() == email:
            return {"user": u.to_api()}
    raise SlackError("users_not_found")


@api_method("usergroups.list")
def usergroups_list(call: Call) -> JSON:
    include_users = call.flag("include_users")
    return {"usergroups": [g.to_api(include_users) for g in call.state.usergroups.values()]}


@api_method("usergroups.users.list")
def usergroups_users_list(call: Call) -> JSON:
    ref = call.need("usergroup", "no_such_subteam")
    group = call.state.usergroups.get(ref)
    if group is None:
        raise SlackError("no_such_subteam")
    return {"users": list(group.users)}

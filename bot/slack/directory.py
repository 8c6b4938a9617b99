"""Who is in which Slack user group, asked at click time and cached for a few seconds.

Membership is resolved when someone clicks Approve, not when the request was made: a person
removed from the approvers group a minute ago can no longer approve.
"""

from __future__ import annotations

import time

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.logs import get_logger

log = get_logger(__name__)


class Directory:
    def __init__(self, client: AsyncWebClient, ttl_seconds: float = 30.0) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._handles: tuple[float, dict[str, str]] | None = None

    async def includes(self, user: str, principals: list[str]) -> bool:
        """True if `user` is one of the principals: a user id, or a member of a listed group.

        Only a user-id principal is compared with `user` directly; a group (id or handle) is asked
        for its members, so an id that merely spells a group's id or handle matches nothing.
        """
        for principal in principals:
            if principal[:1] in ("U", "W") and principal.isupper():
                if principal == user:
                    return True
            elif user in await self.members(principal):
                return True
        return False

    async def members(self, group: str) -> frozenset[str]:
        group_id = await self.group_id(group)
        if group_id is None:
            return frozenset()
        cached = self._members.get(group_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            response = await self._client.usergroups_users_list(usergroup=group_id)
            members = frozenset(str(u) for u in response.get("users") or [])
        except SlackApiError as exc:
            log.warning("usergroup_lookup_failed", group=group_id, error=exc.response.get("error"))
            members = frozenset()
        self._members[group_id] = (time.monotonic() + self._ttl, members)
        return members

    async def group_id(self, group: str) -> str | None:
        """A group id (S…) as it is, or the id of the group with this handle."""
        if group[:1] == "S" and group.isupper():
            return group
        if self._handles is None or self._handles[0] <= time.monotonic():
            try:
                response = await self._client.usergroups_list()
                groups = {str(g["handle"]): str(g["id"]) for g in response.get("usergroups") or []}
            except SlackApiError as exc:
                log.warning("usergroups_list_failed", error=exc.response.get("error"))
                groups = {}
            self._handles = (time.monotonic() + self._ttl, groups)
        return self._handles[1].get(group)

"""What Slack's client does to typed text before sending: escape &, <, > and link @names and #channels."""

from __future__ import annotations

import re

from localslack.model import User
from localslack.state import Workspace

_REFERENCE = re.compile(r"(?<![\w@#/])([@#])([a-z0-9](?:[a-z0-9._\-]*[a-z0-9])?)", re.IGNORECASE)
_BROADCASTS = frozenset({"here", "channel", "everyone"})


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def encode(state: Workspace, author: User, text: str, *, labelled: bool = False) -> str:
    """`labelled` adds names to user references (<@U123|alice>), as slash commands that escape get them."""

    def reference(match: re.Match[str]) -> str:
        sigil, name = match.group(1), match.group(2).lower()
        if sigil == "#":
            for ch in state.channels.values():
                if ch.name == name and not ch.is_im and ch.visible_to(author):
                    return f"<#{ch.id}|{ch.name}>"
            return match.group(0)
        if name in _BROADCASTS:
            return f"<!{name}>"
        for user in state.users.values():
            if user.name == name:
                return f"<@{user.id}|{user.name}>" if labelled else f"<@{user.id}>"
        for group in state.usergroups.values():
            if group.handle == name:
                return f"<!subteam^{group.id}|@{group.handle}>"
        return match.group(0)

    return _REFERENCE.sub(reference, escape(text))

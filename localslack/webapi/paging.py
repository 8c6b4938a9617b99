"""Opaque cursor pagination shared by list-style methods."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import TypeVar

from localslack.errors import SlackError

T = TypeVar("T")


def _encode(key: str) -> str:
    return base64.urlsafe_b64encode(f"next:{key}".encode()).decode()


def _decode(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise SlackError("invalid_cursor") from None
    if not raw.startswith("next:"):
        raise SlackError("invalid_cursor")
    return raw.removeprefix("next:")


def paginate(
    items: Sequence[T], cursor: str | None, limit: int, key: Callable[[T], str]
) -> tuple[list[T], str]:
    """One page plus the next cursor ("" at the end); a cursor names the first item of its page."""
    start = 0
    if cursor:
        wanted = _decode(cursor)
        for i, item in enumerate(items):
            if key(item) == wanted:
                start = i
                break
        else:
            raise SlackError("invalid_cursor")
    page = list(items[start : start + limit])
    more = start + limit < len(items)
    return page, _encode(key(items[start + limit])) if more else ""

"""How long an incident lasted, in the one format every message and the review use."""

from __future__ import annotations

from datetime import UTC, datetime


def elapsed(since: datetime, until: datetime | None = None) -> str:
    seconds = int(((until or datetime.now(UTC)) - since).total_seconds())
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m"

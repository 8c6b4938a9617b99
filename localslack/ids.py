"""Generation of Slack-looking identifiers and strictly increasing message timestamps."""

from __future__ import annotations

import itertools
import secrets
import string
import time

_ALPHABET = string.digits + string.ascii_uppercase


def _base36(n: int, width: int) -> str:
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(_ALPHABET[r])
    return "".join(reversed(out)).rjust(width, "0")


class IdFactory:
    """Hands out ids per prefix ("C", "U", "F", "V", ...), event ids and message ts values."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._last_us = 0

    def new(self, prefix: str) -> str:
        # The "L" marker keeps generated ids apart from the hand-written seed ids.
        return f"{prefix}L{_base36(next(self._counter), 8)}"

    def ts(self) -> str:
        """A message ts: seconds.microseconds, unique and increasing even within one microsecond."""
        now_us = time.time_ns() // 1000
        self._last_us = max(now_us, self._last_us + 1)
        sec, us = divmod(self._last_us, 1_000_000)
        return f"{sec}.{us:06d}"

    def event_id(self) -> str:
        # Globally unique like Slack's: a bot deduplicating by event_id across emulator runs
        # (a shared Redis in tests) must never see an id reused.
        return f"Ev{secrets.token_hex(6).upper()}"

    def trigger_id(self) -> str:
        return f"{next(self._counter)}.{int(time.time())}.{secrets.token_hex(16)}"


def ts_key(ts: str) -> tuple[int, int]:
    """Orders ts strings numerically; string comparison breaks when the seconds part grows a digit."""
    sec, _, frac = ts.partition(".")
    return int(sec), int(frac.ljust(6, "0")[:6] or 0)

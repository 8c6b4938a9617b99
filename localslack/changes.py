"""Change notification for live clients: a workspace version, per-subscriber wake-ups, rejected calls."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from localslack.model import JSON

MAX_PENDING_ERRORS = 100

# Answers apps routinely branch on and recover from (idempotent retries, join-then-post, name probing).
# A Slack user never notices them, so they are not shown as rejections.
ROUTINE_ERRORS = frozenset(
    {
        "already_reacted",
        "no_reaction",
        "already_pinned",
        "no_pin",
        "name_taken",
        "already_in_channel",
        "cant_invite_self",
        "not_in_channel",
        "user_not_found",
        "users_not_found",
    }
)


@dataclass(frozen=True)
class ApiError:
    """An app request the workspace refused: a Web API method (or "response_url"), its error and why."""

    method: str
    error: str
    detail: str = ""

    def to_json(self) -> JSON:
        return {"method": self.method, "error": self.error, "detail": self.detail}


class Subscriber:
    """One live client: woken on every change, with the rejections it has not been sent yet."""

    def __init__(self, *, closed: bool = False) -> None:
        self.closed = closed
        self._wake = asyncio.Event()
        self._errors: deque[ApiError] = deque(maxlen=MAX_PENDING_ERRORS)
        if closed:
            self._wake.set()

    def notify(self, error: ApiError | None = None) -> None:
        if error is not None:
            self._errors.append(error)
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109
        """True when woken, False when `timeout` passed quietly."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            return False
        self._wake.clear()
        return True

    def drain(self) -> list[ApiError]:
        errors = list(self._errors)
        self._errors.clear()
        return errors


class Changes:
    """Coarse on purpose: clients re-read what they show whenever `version` moves."""

    def __init__(self) -> None:
        self.version = 0
        self._subscribers: set[Subscriber] = set()
        self._closed = False

    def bump(self) -> None:
        self.version += 1
        for sub in self._subscribers:
            sub.notify()

    def report(self, method: str, error: str, detail: str = "") -> None:
        rejected = ApiError(method=method, error=error, detail=detail)
        for sub in self._subscribers:
            sub.notify(rejected)

    def api_result(self, method: str, body: JSON) -> None:
        """Called with every Web API answer the app got."""
        self.bump()
        error = body.get("error")
        if body.get("ok") or not isinstance(error, str) or error in ROUTINE_ERRORS:
            return
        meta = body.get("response_metadata")
        messages = meta.get("messages") if isinstance(meta, dict) else None
        details = messages if isinstance(messages, list) else body.get("errors")
        self.report(method, error, "; ".join(map(str, details)) if isinstance(details, list) else "")

    def subscribe(self) -> Subscriber:
        # A client connecting while the emulator stops gets a finished stream instead of holding shutdown.
        sub = Subscriber(closed=self._closed)
        if not self._closed:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    def open(self) -> None:
        self._closed = False

    def close(self) -> None:
        """Ends every live stream; the emulator is stopping."""
        self._closed = True
        for sub in list(self._subscribers):
            sub.close()
        self._subscribers.clear()

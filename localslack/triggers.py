"""trigger_id bookkeeping: issued per interaction, valid for a short window and a single exchange."""

from __future__ import annotations

import time
from dataclasses import dataclass

from localslack.errors import SlackError
from localslack.ids import IdFactory


@dataclass
class _Trigger:
    user: str
    issued: float
    used: bool = False


class Triggers:
    def __init__(self, ids: IdFactory, ttl: float) -> None:
        self._ids = ids
        self._ttl = ttl
        self._issued: dict[str, _Trigger] = {}

    def issue(self, user: str) -> str:
        trigger_id = self._ids.trigger_id()
        self._issued[trigger_id] = _Trigger(user=user, issued=time.monotonic())
        return trigger_id

    def exchange(self, trigger_id: str) -> str:
        """Consumes the trigger and returns the user it belongs to, or raises Slack's error."""
        trigger = self._issued.get(trigger_id)
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger.used:
            raise SlackError("exchanged_trigger_id")
        if time.monotonic() - trigger.issued > self._ttl:
            raise SlackError("expired_trigger_id")
        trigger.used = True
        return trigger.user

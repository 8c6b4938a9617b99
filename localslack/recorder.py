"""Log of every Web API call and every delivery attempt to the app, for test assertions."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ApiCall:
    method: str
    args: dict[str, Any]
    at: float
    status: int
    ok: bool
    error: str | None
    token: str | None


@dataclass
class DeliveryAttempt:
    """One try at handing a payload to the app, over HTTP or a socket."""

    kind: str
    transport: str
    retry_num: int
    at: float = field(default_factory=time.time)
    status: int | None = None
    reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Recorder:
    def __init__(self) -> None:
        self.api_calls: list[ApiCall] = []
        self.deliveries: list[DeliveryAttempt] = []

    def record_call(self, call: ApiCall) -> None:
        self.api_calls.append(call)

    def calls(self, method: str | None = None, *, ok: bool | None = None) -> list[ApiCall]:
        return [
            c for c in self.api_calls if (method is None or c.method == method) and (ok is None or c.ok == ok)
        ]

    def clear(self) -> None:
        self.api_calls.clear()
        self.deliveries.clear()

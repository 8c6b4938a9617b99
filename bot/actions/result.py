"""What running an action returns, and the caps that keep it small enough for Slack and the store.

`status` says whether the state-changing step did what it was asked: `succeeded` (the statement
committed, the command exited 0, the endpoint answered an expected status), `failed` (it ran and
was refused or broke, or could not be reached) or `timeout`. Everything in a result is JSON data
with secrets already redacted, so it can be stored, audited and posted as it is.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict

from bot.logs import redact_text, redact_value
from bot.probes.result import Scalar

ActionStatus = Literal["succeeded", "failed", "timeout"]

# Enough for a Slack section (3000 chars) plus a file in the thread; more is cut and flagged.
OUTPUT_CHARS = 4096
MAX_ROWS = 50


class ActionResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: ActionStatus
    values: dict[str, Scalar] = {}
    columns: list[str] = []
    rows: list[list[Any]] = []
    output: str = ""
    truncated: bool = False
    latency_ms: float
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


@dataclass
class Outcome:
    """What a step produced when it got an answer; the executor adds status, latency, redaction.

    `error` set means the target answered but the answer is a failure (HTTP 500, exit code 3).
    """

    values: dict[str, Scalar] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    output: str = ""
    truncated: bool = False
    error: str | None = None

    def redacted(self, secrets: Collection[str]) -> Self:
        """A copy with `secrets` masked wherever the target's own words appear."""
        return replace(
            self,
            values=redact_value(self.values, secrets),
            rows=redact_value(self.rows, secrets),
            output=redact_text(self.output, secrets),
            error=redact_text(self.error, secrets) if self.error is not None else None,
        )


def head_text(text: str, limit: int = OUTPUT_CHARS) -> tuple[str, bool]:
    """The start of `text` (a response body, notices), and whether anything was cut."""
    if len(text) <= limit:
        return text, False
    return text[: limit - 1] + "…", True


def tail_text(text: str, limit: int = OUTPUT_CHARS) -> tuple[str, bool]:
    """The end of `text` in whole lines (command output: the last lines say how it ended)."""
    if len(text) <= limit:
        return text, False
    kept = text[-limit:]
    newline = kept.find("\n")
    return (kept[newline + 1 :] if 0 <= newline < len(kept) - 1 else kept), True

"""What all probe kinds share: the spec base model, `{param}` references, and a probe's findings.

Probe specs are embedded in runbook YAML, so they are declarative data. Wherever a spec takes a
value from the runbook's parameters it is written `{name}` as the *whole* value; the value then
travels as data (a bind parameter, a URL query value, one argv element, an escaped PromQL string)
and is never spliced into SQL, a URL path or a shell line. A `{` or `}` anywhere else in such a
value is refused when the spec is validated, so a half-spliced template cannot slip through.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict

from bot.logs import redact_value
from bot.probes.result import Scalar
from bot.targets import TargetName

PARAM_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,62}"
_WHOLE_REF = re.compile(rf"^\{{({PARAM_NAME})\}}$")

# A literal or a `{param}` reference, as written in a spec.
BindValue = str | int | float | bool | None


class ProbeSpecError(Exception):
    """A spec cannot run against this registry or with these params: a runbook or caller bug."""


class ProbeFailed(Exception):
    """The probe could not get an answer; the message is short and goes to Slack after redaction."""

    def __init__(self, message: str, *, status: Literal["error", "timeout"] = "error") -> None:
        super().__init__(message)
        self.message = message
        self.status: Literal["error", "timeout"] = status


class SpecBase(BaseModel):
    """Fields every probe spec has. Subclasses add `kind` and what they need."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: TargetName

    def param_names(self) -> frozenset[str]:
        """The runbook parameters this spec reads; the runbook must declare every one."""
        return frozenset()


def param_ref(value: object) -> str | None:
    """The parameter name if `value` is exactly `{name}`, else None."""
    if isinstance(value, str) and (match := _WHOLE_REF.fullmatch(value)):
        return match.group(1)
    return None


def check_literal_or_ref(value: object, where: str) -> None:
    """Refuse a string that has braces but is not a whole `{name}` reference."""
    if isinstance(value, str) and param_ref(value) is None and ("{" in value or "}" in value):
        raise ValueError(
            f"{where}: {value!r} mixes text and a placeholder; a parameter must be the whole value, "
            "written {name}"
        )


def refs_in(values: Mapping[str, object] | list[Any]) -> frozenset[str]:
    items = values.values() if isinstance(values, Mapping) else values
    return frozenset(name for item in items if (name := param_ref(item)) is not None)


@dataclass(frozen=True)
class Call:
    """One probe run: the validated params, the run id, and the deadline on the loop's clock."""

    params: Mapping[str, Any]
    run_id: str
    timeout_s: float
    deadline: float

    def resolve(self, value: BindValue) -> Any:
        """A spec value with a `{name}` reference replaced by the parameter's value."""
        name = param_ref(value)
        return self.params[name] if name is not None else value

    def remaining(self) -> float:
        return max(0.0, self.deadline - asyncio.get_running_loop().time())


@dataclass
class Findings:
    """What a probe found; the runner adds status, latency and the error."""

    values: dict[str, Scalar] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    truncated: bool = False

    def redacted(self, secrets: Collection[str]) -> Self:
        """A copy with `secrets` masked wherever the target's own words appear."""
        return replace(self, values=redact_value(self.values, secrets), rows=redact_value(self.rows, secrets))


def first_line(text: str, limit: int = 300) -> str:
    """The first non-empty line of an error message, cut to a length Slack shows comfortably."""
    for line in text.strip().splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def os_reason(exc: BaseException) -> str | None:
    """'Connection refused' for an OS-level failure anywhere in an exception's cause chain."""
    current: BaseException | None = exc
    for _ in range(10):
        if current is None:
            break
        if isinstance(current, OSError):
            if isinstance(current.errno, int) and current.errno > 0:
                return os.strerror(current.errno)
            if current.strerror:
                return str(current.strerror)
        current = current.__cause__ or current.__context__
    return None

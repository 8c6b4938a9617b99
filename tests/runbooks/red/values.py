"""Which observed value puts a check into a given status, read off its own warn/crit rules.

`value_for(check, "red")` is a value the check judges `crit` (or `warn` when it has only a warn
rule); `value_for(check, "green")` one it judges `ok`. Drivers then make the system produce
that value for real: a Prometheus answer, an HTTP reply, lines in a log file, rows in a table.
"""

from __future__ import annotations

from typing import Literal

from bot.runbooks.model import Check, Rule

State = Literal["red", "green"]
Observed = float | int | str | bool


class NoDriver(LookupError):
    """No driver knows how to put this check into this state: add one, or an EXCEPTIONS entry."""


def expected_status(check: Check, state: State) -> str:
    if state == "green":
        return "ok"
    return "crit" if check.crit is not None else "warn"


def _around(rule: Rule) -> list[Observed]:
    value = rule.value
    if isinstance(value, bool):
        return [not value, value]
    if isinstance(value, int | float):
        step = max(abs(value) * 0.5, 1)
        return [value + 1, value - 1, value + step, value - step, value + 0.001, value - 0.001, value]
    return [value, f"not-{value}", "degraded"]


def value_for(check: Check, state: State) -> Observed:
    """A value the check judges as `state` expects; raises `NoDriver` when its rules allow none."""
    want = expected_status(check, state)
    rules = [rule for rule in (check.crit, check.warn) if rule is not None]
    first: list[Observed] = [0] if state == "green" else []
    if state == "green" and any(isinstance(rule.value, bool) for rule in rules):
        first = []
    candidates = first + [value for rule in rules for value in _around(rule)]
    for candidate in candidates:
        if check.judge(candidate) == want:
            return candidate
    raise NoDriver(f"no value makes {check.id} {want} ({check.threshold_text()})")

"""The runbook file format: a pydantic model per part, validated when the catalogue loads.

A runbook declares where it comes from (seed file and section), the slash command it answers,
typed parameters, checks (a probe, the value to judge, warn/crit rules), actions with a risk
level, manual steps the bot can only show, follow-ups conditional on check outcomes (decision
trees included: see `When` and `NextStep`), an optional schedule, and its data class (`data`:
what its checks show of people and secrets, see `DataClass`). `opsbot runbooks schema`
exports the JSON Schema for editors.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, Literal

from croniter import croniter
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from bot.probes import ProbeSpec
from bot.runbooks.params import NAME, Param
from bot.runbooks.steps import ActionStep

RUNBOOK_ID = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_-]*)*$"
Risk = Literal["read_only", "low", "high", "critical"]
RISK_ORDER: dict[str, int] = {"read_only": 0, "low": 1, "high": 2, "critical": 3}


def _renamed_status(value: object) -> object:
    """`error` is what `unknown` was called before checks failed closed; runbooks and stored runs
    that still say it mean a check that measured nothing."""
    return "unknown" if value == "error" else value


# A check's verdict. `unknown`: nothing was measured (probe error or timeout, no series, no value,
# a value that is not a number) — never shown or counted as ok.
Status = Annotated[Literal["ok", "warn", "crit", "unknown"], BeforeValidator(_renamed_status)]
# How a status reads wherever a person sees it (card, text fallback, CLI, review), beside its colour.
STATUS_WORD: dict[str, str] = {"ok": "OK", "warn": "WARNING", "crit": "CRITICAL", "unknown": "UNKNOWN"}

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Which seed runbook, and which section of it, this file transcribes."""

    seed: str = Field(pattern=r"^\d{3}_[0-9a-f]{16}\.txt$")
    section: str = Field(min_length=3, max_length=200)


class CommandBinding(_Strict):
    """The slash command that runs this runbook: `/db connections` is family db, subcommand connections."""

    family: str = Field(pattern=r"^[a-z][a-z0-9-]{0,20}$")
    subcommand: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")
    positional: list[str] = Field(default_factory=list, max_length=3)

    @property
    def text(self) -> str:
        return f"/{self.family}" + (f" {self.subcommand}" if self.subcommand else "")


class Rule(_Strict):
    """`value <op> threshold`, e.g. {op: ">", value: 55}."""

    op: Literal[">", ">=", "<", "<=", "==", "!="]
    value: float | int | str | bool

    def refuses(self, observed: object) -> str | None:
        """Why `observed` cannot be compared by this rule (None when it can): a comparison that
        cannot be made must not quietly come out as "does not match", which reads as ok."""
        equality = self.op in ("==", "!=")
        if isinstance(self.value, bool):
            if not equality:
                return f"yes/no values cannot be compared with {self.op}"
            if isinstance(observed, bool) or _number(observed) is not None:
                return None
            return f"not yes or no: {observed!r}"
        if isinstance(self.value, int | float):
            if isinstance(observed, bool) and equality:
                return None
            return None if _number(observed) is not None else f"not a number: {observed!r}"
        return None if equality else f"text cannot be compared with {self.op}"

    def matches(self, observed: object) -> bool:
        if self.refuses(observed) is not None:
            return False
        if isinstance(self.value, bool) or isinstance(observed, bool):
            seen = observed if isinstance(observed, bool) else bool(_number(observed))
            return _OPS[self.op](seen, bool(self.value))
        if isinstance(self.value, int | float):
            return _OPS[self.op](_number(observed), self.value)
        return _OPS[self.op](str(observed), self.value)

    def describe(self, unit: str = "") -> str:
        """The rule as words: `if > 55 connections`, `if no` (for `== false` and `!= true`)."""
        if isinstance(self.value, bool) and self.op in ("==", "!="):
            return "if yes" if self.value == (self.op == "==") else "if no"
        shown = yes_no(self.value) if isinstance(self.value, bool) else str(self.value)
        return f"if {_OP_WORD[self.op]} {shown}{(' ' + unit) if unit else ''}"


_OP_WORD = {">": ">", ">=": "≥", "<": "<", "<=": "≤", "==": "=", "!=": "≠"}


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _number(observed: object) -> float | None:
    """`observed` as a finite number (numeric text included), or None. A boolean is not a number."""
    if isinstance(observed, bool) or not isinstance(observed, int | float | str):
        return None
    try:
        number = float(observed)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


class Check(_Strict):
    """One diagnostic: run a probe, judge one of its values against warn/crit rules."""

    id: str = Field(pattern=NAME)
    title: str = Field(min_length=3, max_length=120)
    probe: ProbeSpec
    value: str | None = Field(None, max_length=80)
    warn: Rule | None = None
    crit: Rule | None = None
    unit: str = Field("", max_length=20)
    explain: str = Field("", max_length=500)
    timeout_s: float = Field(5.0, gt=0, le=60)
    show_rows: bool = False
    # What the check is when its probe does not get an answer (refused, timed out, any probe
    # error): `unknown`, nothing was measured — or `crit`, for a check whose whole point is "does
    # it answer" (`SELECT 1`, `PING`), where not answering is the red state. `crit` needs a crit
    # rule: unreachable is that rule's state, and a check that cannot be crit otherwise must not
    # turn crit by failing. A missing or unjudgeable value stays `unknown` either way.
    unreachable: Literal["unknown", "crit"] = "unknown"

    @model_validator(mode="after")
    def _rules_need_a_value(self) -> Check:
        if (self.warn or self.crit) and not self.value:
            raise ValueError(f"check {self.id}: warn/crit need `value` (which probe value to judge)")
        if self.unreachable == "crit" and self.crit is None:
            raise ValueError(f"check {self.id}: `unreachable: crit` needs a `crit` rule")
        return self

    def unjudgeable(self, observed: object) -> str | None:
        """Why `observed` cannot be judged against this check's rules; None when it can (or when
        there are no rules to judge by)."""
        if self.warn is None and self.crit is None:
            return None
        if observed is None:
            return "no value"
        for rule in (self.crit, self.warn):
            if rule is not None and (why := rule.refuses(observed)) is not None:
                return why
        return None

    def judge(self, observed: object) -> Status:
        """Fails closed: a value the rules cannot judge is `unknown`, never `ok`."""
        if self.unjudgeable(observed) is not None:
            return "unknown"
        if self.crit is not None and self.crit.matches(observed):
            return "crit"
        if self.warn is not None and self.warn.matches(observed):
            return "warn"
        return "ok"

    def threshold_text(self) -> str:
        parts = []
        if self.warn:
            parts.append(f"warning {self.warn.describe(self.unit)}")
        if self.crit:
            parts.append(f"critical {self.crit.describe(self.unit)}")
        return " · ".join(parts)


class Action(_Strict):
    """A fix the runbook allows. Anything above `read_only` runs only after a second person approves."""

    id: str = Field(pattern=NAME)
    title: str = Field(min_length=3, max_length=70)
    summary: str = Field("", max_length=500)
    risk: Risk
    step: ActionStep
    params: list[Param] = Field(default_factory=list)
    preview: ProbeSpec | None = None
    verify: list[str] = Field(default_factory=list)
    restarts_service: bool = False
    timeout_s: float = Field(30.0, gt=0, le=3600)
    needs_approvals: int | None = Field(None, ge=1, le=3)
    # How far the preview may move between request and approval (fraction of its rows) before
    # the approval is refused as "not what was requested".
    preview_margin: float = Field(0.25, ge=0, le=1)

    @model_validator(mode="after")
    def _manual_is_read_only(self) -> Action:
        if self.step.kind == "manual" and self.preview is not None:
            raise ValueError(f"action {self.id}: a manual step has nothing to preview")
        return self


Observed = Mapping[str, tuple[str, object]]
"""What a diagnosis found, for evaluating `When`: check id → (status, measured value)."""


class When(_Strict):
    """Condition for a follow-up. One of four shapes, the last two nesting any of them:

    ```yaml
    {check: p95, status: [warn]}                   # the check's status is one of these
    {status: [crit, unknown]}                      # without `check`: the overall status
    {check: cache_hit_rate, op: "<", value: 60}    # the check's measured value, compared
    {all: [ ... ]}  /  {any: [ ... ]}              # every / at least one of the conditions
    ```

    Fail closed: a comparison never holds for a check that measured nothing (status `unknown`, no
    value) — "hit rate < 60 %" is not true of a Redis that did not answer. For the same reason
    there is no `not` (it would turn "no answer" into "true"): write the opposite comparison or
    the other statuses instead.
    """

    check: str | None = Field(None, pattern=NAME)
    status: list[Status] | None = Field(None, min_length=1)
    op: Literal[">", ">=", "<", "<=", "==", "!="] | None = None
    value: float | int | str | bool | None = None
    all_of: list[When] | None = Field(None, alias="all", min_length=1)
    any_of: list[When] | None = Field(None, alias="any", min_length=1)

    @model_validator(mode="after")
    def _one_shape(self) -> When:
        compares = self.op is not None or self.value is not None
        shapes = [self.status is not None, compares, self.all_of is not None, self.any_of is not None]
        if sum(shapes) != 1:
            raise ValueError("a condition is exactly one of: status, op + value, all, any")
        if compares and (self.op is None or self.value is None or self.check is None):
            raise ValueError("a comparison needs check, op and value")
        if (self.all_of is not None or self.any_of is not None) and self.check is not None:
            raise ValueError("all/any take conditions, not a check (put check inside each condition)")
        return self

    def holds(self, observed: Observed, overall: str) -> bool:
        if self.all_of is not None:
            return all(part.holds(observed, overall) for part in self.all_of)
        if self.any_of is not None:
            return any(part.holds(observed, overall) for part in self.any_of)
        status, value = (overall, None) if self.check is None else observed.get(self.check, ("unknown", None))
        if self.status is not None:
            return status in self.status
        if status == "unknown" or value is None or self.op is None or self.value is None:
            return False
        return Rule(op=self.op, value=self.value).matches(value)

    def checks(self) -> Iterator[tuple[str, bool]]:
        """Every check this condition names, with whether it compares the check's value."""
        for part in (self.all_of or []) + (self.any_of or []):
            yield from part.checks()
        if self.check is not None:
            yield self.check, self.op is not None


class NextStep(_Strict):
    """A follow-up: when `when` holds (always, without it) suggest other runbooks (`runbook:db.locks`)
    or this runbook's actions (`action:terminate_idle`), with a note saying why.

    Steps are read in order and every one whose condition holds is suggested — unless a step with
    `stop: true` holds: the walk ends there and later steps are not considered. A decision tree is
    one step per leaf, each with the whole path as its condition (`all: [...]`) and `stop: true`,
    so a diagnosis gets exactly one leaf's advice even if two paths were ever to overlap. A leaf may
    advise without suggesting anything (a `note` only, e.g. "PASS, continue monitoring").
    """

    when: When | None = None
    suggest: list[Annotated[str, Field(pattern=r"^(runbook|action):[a-z0-9_.-]+$")]] = Field(
        default_factory=list
    )
    note: str = Field("", max_length=300)
    stop: bool = False

    @model_validator(mode="after")
    def _says_something(self) -> NextStep:
        if not self.suggest and not self.note:
            raise ValueError("a next step needs a suggestion or a note")
        return self


class Schedule(_Strict):
    cron: str
    channel: str = Field(pattern=r"^[a-z0-9_-]{1,80}$")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"`{value}` is not a valid cron expression")
        return value


def _data_spelling(value: object) -> object:
    """YAML may spell the class with a dash, as people write it."""
    return "secret_adjacent" if value == "secret-adjacent" else value


# What a runbook's checks show of the systems they read, for deciding who may see a diagnosis:
# `operational` — counts, sizes, states, settings of the service (nothing about a person);
# `personal` — rows about people or their actions: user rows, other sessions' query text, log lines;
# `secret_adjacent` — configuration or secret metadata (what is set where, rotation state).
# A runbook showing both personal and secret-adjacent data is `secret_adjacent`, the narrower audience.
DataClass = Annotated[Literal["operational", "personal", "secret_adjacent"], BeforeValidator(_data_spelling)]


class Runbook(_Strict):
    """One runbook file. `data` classifies what its checks show (see `DataClass`): `operational`
    unless they show rows about people, query text or log lines (`personal`) or configuration and
    secret metadata (`secret_adjacent`, also written `secret-adjacent`)."""

    id: str = Field(pattern=RUNBOOK_ID, max_length=60)
    version: int = Field(1, ge=1)
    title: str = Field(min_length=3, max_length=100)
    summary: str = Field(min_length=3, max_length=600)
    source: Source
    command: CommandBinding | None = None
    params: list[Param] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list, max_length=20)
    actions: list[Action] = Field(default_factory=list, max_length=20)
    manual: list[Annotated[str, Field(min_length=3, max_length=400)]] = Field(default_factory=list)
    next: list[NextStep] = Field(default_factory=list)
    schedule: Schedule | None = None
    deadline_s: float = Field(15.0, gt=0, le=120)
    data: DataClass = "operational"

    @model_validator(mode="after")
    def _consistent(self) -> Runbook:
        check_ids = [c.id for c in self.checks]
        action_ids = [a.id for a in self.actions]
        for ids, what in (
            (check_ids, "check"),
            (action_ids, "action"),
            ([p.name for p in self.params], "param"),
        ):
            duplicates = {i for i in ids if ids.count(i) > 1}
            if duplicates:
                raise ValueError(f"{what} ids repeated: {', '.join(sorted(duplicates))}")
        declared = {p.name for p in self.params}
        for check in self.checks:
            missing = check.probe.param_names() - declared
            if missing:
                raise ValueError(f"check {check.id} uses undeclared params: {', '.join(sorted(missing))}")
        for action in self.actions:
            own = declared | {p.name for p in action.params}
            used = action.step.param_names() | (
                action.preview.param_names() if action.preview else frozenset()
            )
            if used - own:
                raise ValueError(
                    f"action {action.id} uses undeclared params: {', '.join(sorted(used - own))}"
                )
            unknown = set(action.verify) - set(check_ids)
            if unknown:
                raise ValueError(f"action {action.id} verifies unknown checks: {', '.join(sorted(unknown))}")
        for i, step in enumerate(self.next):
            for name, compares in step.when.checks() if step.when else ():
                named = self.check(name)
                if named is None:
                    raise ValueError(f"next[{i}]: unknown check {name}")
                if compares and named.value is None:
                    raise ValueError(f"next[{i}]: check {name} has no `value` to compare")
            for ref in step.suggest:
                kind, _, name = ref.partition(":")
                if kind == "action" and name not in action_ids:
                    raise ValueError(f"next: unknown action {name}")
        if self.command:
            unknown_pos = set(self.command.positional) - declared
            if unknown_pos:
                raise ValueError(f"command.positional names undeclared params: {', '.join(unknown_pos)}")
        if not self.checks and not self.actions and not self.manual:
            raise ValueError("a runbook needs at least one check, action or manual step")
        return self

    def action(self, action_id: str) -> Action | None:
        return next((a for a in self.actions if a.id == action_id), None)

    def check(self, check_id: str) -> Check | None:
        return next((c for c in self.checks if c.id == check_id), None)

    def follow_ups(self, observed: Observed, overall: str) -> list[NextStep]:
        """The `next` steps whose conditions hold, in order, ending at the first that holds and stops."""
        found = []
        for step in self.next:
            if step.when is None or step.when.holds(observed, overall):
                found.append(step)
                if step.stop:
                    break
        return found

    @property
    def max_risk(self) -> Risk:
        risks = [a.risk for a in self.actions] or ["read_only"]
        return max(risks, key=lambda r: RISK_ORDER[r])

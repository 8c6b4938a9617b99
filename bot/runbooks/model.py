"""The runbook file format: a pydantic model per part, validated when the catalogue loads.

A runbook declares where it comes from (seed file and section), the slash command it answers,
typed parameters, checks (a probe, the value to judge, warn/crit rules), actions with a risk
level, manual steps the bot can only show, follow-ups conditional on check outcomes, and an
optional schedule. `opsbot runbooks schema` exports the JSON Schema for editors.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Annotated, Any, Literal

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.probes import ProbeSpec
from bot.runbooks.params import NAME, Param
from bot.runbooks.steps import ActionStep

RUNBOOK_ID = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_-]*)*$"
Risk = Literal["read_only", "low", "high", "critical"]
Status = Literal["ok", "warn", "crit", "error"]
RISK_ORDER: dict[str, int] = {"read_only": 0, "low": 1, "high": 2, "critical": 3}

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

    def matches(self, observed: object) -> bool:
        if isinstance(self.value, bool) or isinstance(observed, bool):
            return _OPS[self.op](bool(observed), bool(self.value)) if self.op in ("==", "!=") else False
        if isinstance(self.value, int | float):
            if not isinstance(observed, int | float):
                return False
            return _OPS[self.op](observed, self.value)
        return _OPS[self.op](str(observed), self.value) if self.op in ("==", "!=") else False

    def describe(self, unit: str = "") -> str:
        shown = str(self.value).lower() if isinstance(self.value, bool) else str(self.value)
        return f"{self.op} {shown}{(' ' + unit) if unit else ''}"


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

    @model_validator(mode="after")
    def _rules_need_a_value(self) -> Check:
        if (self.warn or self.crit) and not self.value:
            raise ValueError(f"check {self.id}: warn/crit need `value` (which probe value to judge)")
        return self

    def judge(self, observed: object) -> Status:
        if self.crit is not None and self.crit.matches(observed):
            return "crit"
        if self.warn is not None and self.warn.matches(observed):
            return "warn"
        return "ok"

    def threshold_text(self) -> str:
        parts = []
        if self.warn:
            parts.append(f"warn {self.warn.describe(self.unit)}")
        if self.crit:
            parts.append(f"crit {self.crit.describe(self.unit)}")
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


class When(_Strict):
    """Condition for a follow-up: a check's status (or the overall status) is one of these."""

    check: str | None = Field(None, pattern=NAME)
    status: list[Status] = Field(min_length=1)


class NextStep(_Strict):
    """A suggested follow-up: another runbook (`runbook:db.locks`) or an action (`action:terminate_idle`)."""

    when: When | None = None
    suggest: list[Annotated[str, Field(pattern=r"^(runbook|action):[a-z0-9_.-]+$")]] = Field(min_length=1)
    note: str = Field("", max_length=300)


class Schedule(_Strict):
    cron: str
    channel: str = Field(pattern=r"^[a-z0-9_-]{1,80}$")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"`{value}` is not a valid cron expression")
        return value


class Runbook(_Strict):
    """One runbook file."""

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
        for step in self.next:
            if step.when and step.when.check and step.when.check not in check_ids:
                raise ValueError(f"next: unknown check {step.when.check}")
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

    @property
    def max_risk(self) -> Risk:
        risks = [a.risk for a in self.actions] or ["read_only"]
        return max(risks, key=lambda r: RISK_ORDER[r])

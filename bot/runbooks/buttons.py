"""What the "Run <runbook>" and action buttons on a diagnosis card carry, and turning it back into a
request: ids and typed parameter values as JSON, checked on click by the same parameter models as
typed text (never re-parsed from text).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from bot.errors import UserError
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.commands import ActionRequest, RunRequest
from bot.runbooks.model import Action, Runbook
from bot.runbooks.params import ParamError, validate_values


class _Button(BaseModel):
    @classmethod
    def from_value(cls, value: object) -> Any:
        """The button's `value` as this model; a value that is not one is a stale or forged button."""
        try:
            return cls.model_validate_json(str(value or ""))
        except ValidationError:
            raise UserError("That button no longer works.") from None


class RunButton(_Button):
    runbook: str
    params: dict[str, Any] = {}

    def request(self, catalogue: Catalogue) -> RunRequest:
        runbook = catalogue.get(self.runbook)
        if runbook is None:
            raise ParamError(f"the runbook {self.runbook} no longer exists")
        return RunRequest(runbook_id=runbook.id, params=validate_values(list(runbook.params), self.params))


class ActionButton(_Button):
    runbook: str
    action: str
    params: dict[str, Any] = {}

    def target(self, catalogue: Catalogue) -> tuple[Runbook, Action]:
        runbook = catalogue.get(self.runbook)
        action = runbook.action(self.action) if runbook else None
        if runbook is None or action is None:
            raise ParamError(f"`{self.runbook}:{self.action}` is no longer in the runbook catalogue")
        return runbook, action

    def request(self, catalogue: Catalogue) -> ActionRequest:
        runbook, action = self.target(catalogue)
        values = validate_values([*runbook.params, *action.params], self.params)
        return ActionRequest(runbook_id=runbook.id, action_id=action.id, params=values)

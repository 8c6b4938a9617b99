"""Action executors: carry out an approved runbook action's state-changing step on a target.

One module per target kind (postgres, redis, http, command) runs its step model from
`bot.runbooks.steps`, reusing the probes' connections and process handling; `executor` ties them
to the registry, the deadline and redaction. Manual steps are never executed.
"""

from bot.actions.executor import ActionExecutor, ExecutableStep
from bot.actions.result import ActionResult, ActionStatus

__all__ = ["ActionExecutor", "ActionResult", "ActionStatus", "ExecutableStep"]

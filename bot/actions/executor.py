"""Running an approved action's step against the targets registry, exactly as written.

    async with ActionExecutor(targets) as executor:
        executor.check(step)  # at catalogue load: target exists, kind fits, program allowed
        result = await executor.run(step, params, run_id="a-42", timeout_s=30.0)

The caller (approvals) decides *whether* to run; this module only carries the step out. `run`
never raises for anything a target does: a refused connection, an SQL error, a 500, a non-zero
exit or the deadline all come back as an `ActionResult` with a short, redacted `error`. It raises
`ProbeSpecError` when the step cannot run here at all, and for manual steps, which a person takes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import aiohttp

from bot.actions.command import check_command_run, run_command_run
from bot.actions.http import run_http_call
from bot.actions.postgres import run_postgres_write
from bot.actions.redis import check_redis_write, run_redis_write
from bot.actions.result import ActionResult, ActionStatus, Outcome
from bot.logs import get_logger
from bot.probes.attempt import Terms, attempt
from bot.probes.base import Call, ProbeSpecError
from bot.probes.http import client_session
from bot.probes.postgres import PostgresPools
from bot.probes.redis import RedisClients
from bot.runbooks.steps import CommandRun, HttpCall, ManualSteps, PostgresWrite, RedisWrite
from bot.targets import CommandTarget, HttpTarget, PostgresTarget, RedisTarget, Targets, UnknownTarget
from bot.transport import CommandHosts

log = get_logger(__name__)

ExecutableStep = PostgresWrite | RedisWrite | HttpCall | CommandRun

ACTION_TERMS: Terms[ActionStatus] = Terms(
    ok="succeeded",
    error="failed",
    timeout="timeout",
    event="action_finished",
    ok_level=logging.INFO,
    log=log,
    # Unlike a probe, an action may have changed something before the deadline hit.
    timeout_caveat="; it may or may not have taken effect",
)


class ActionExecutor:
    """Carries out action steps, keeping one pool/client per target until closed."""

    def __init__(self, targets: Targets) -> None:
        self._targets = targets
        self._postgres = PostgresPools()
        self._redis = RedisClients()
        self._commands = CommandHosts()
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def check(self, step: ExecutableStep | ManualSteps) -> None:
        """Raise `ProbeSpecError` if `step` cannot run against this registry."""
        if isinstance(step, ManualSteps):
            raise ProbeSpecError("manual steps are never executed: a person takes them")
        try:
            target = self._targets.get(step.target)
        except UnknownTarget as exc:
            raise ProbeSpecError(str(exc)) from None
        if target.kind != step.kind:
            raise ProbeSpecError(
                f"a {step.kind} action cannot run against {step.target!r}, a {target.kind} target"
            )
        if isinstance(step, RedisWrite):
            check_redis_write(step)
        if isinstance(step, CommandRun) and isinstance(target, CommandTarget):
            check_command_run(step, target)

    async def run(
        self,
        step: ExecutableStep | ManualSteps,
        params: Mapping[str, Any],
        *,
        run_id: str,
        timeout_s: float,
    ) -> ActionResult:
        if self._closed:
            raise RuntimeError("the action executor is closed")
        if not timeout_s > 0:
            raise ProbeSpecError(f"timeout must be positive, got {timeout_s}")
        self.check(step)
        assert not isinstance(step, ManualSteps)  # check() refused it
        if missing := sorted(step.param_names() - set(params)):
            raise ProbeSpecError(f"action needs parameter {missing[0]!r}, which was not given")
        done = await attempt(
            ACTION_TERMS,
            self._dispatch,
            step,
            params,
            run_id=run_id,
            timeout_s=timeout_s,
            targets=self._targets,
            refusal=lambda outcome: outcome.error,
        )
        outcome = done.answer or Outcome()
        return ActionResult(
            status=done.status,
            values=outcome.values,
            columns=outcome.columns,
            rows=outcome.rows,
            output=outcome.output,
            truncated=outcome.truncated,
            latency_ms=done.latency_ms,
            error=done.error,
        )

    async def _dispatch(self, step: ExecutableStep, call: Call) -> Outcome:
        targets = self._targets
        match step:
            case PostgresWrite():
                target_pg = targets.get_kind(step.target, PostgresTarget)
                return await run_postgres_write(step, target_pg, self._postgres, call)
            case RedisWrite():
                target_redis = targets.get_kind(step.target, RedisTarget)
                return await run_redis_write(step, target_redis, self._redis, call)
            case HttpCall():
                return await run_http_call(
                    step, targets.get_kind(step.target, HttpTarget), self._http(), call
                )
            case CommandRun():
                target_cmd = targets.get_kind(step.target, CommandTarget)
                return await run_command_run(step, target_cmd, self._commands, call)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = client_session()
        return self._session

    async def close(self) -> None:
        """Close every pool, client and session; the executor cannot be used afterwards."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        await self._redis.close()
        await self._postgres.close()
        await self._commands.close()

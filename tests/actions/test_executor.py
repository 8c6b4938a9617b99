"""What every action kind shares: refusals before running, one log line, a JSON-safe result."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.actions import ActionExecutor, ActionResult
from bot.probes import ProbeSpecError
from bot.runbooks.steps import CommandRun, HttpCall, ManualSteps, PostgresWrite
from tests.actions.conftest import Executors
from tests.probes.conftest import make_targets


@pytest.fixture
def executor(executor_for: Executors, tmp_path: Path) -> ActionExecutor:
    return executor_for(
        make_targets(
            host={"kind": "command", "allowed_programs": ["printf"], "cwd": str(tmp_path)},
            metrics={"kind": "prometheus", "base_url": "http://127.0.0.1:9"},
        )
    )


async def test_manual_steps_are_never_executed(executor: ActionExecutor) -> None:
    step = ManualSteps(steps=["Restart the primary by hand"])
    with pytest.raises(ProbeSpecError, match="manual steps are never executed"):
        executor.check(step)
    with pytest.raises(ProbeSpecError, match="manual steps are never executed"):
        await executor.run(step, {}, run_id="m", timeout_s=1)


async def test_steps_that_cannot_run_here_are_refused(executor: ActionExecutor) -> None:
    unknown = PostgresWrite(target="app_db", sql="VACUUM")
    with pytest.raises(ProbeSpecError, match="unknown target 'app_db'"):
        executor.check(unknown)
    wrong_kind = HttpCall(target="metrics", path="/-/reload")
    with pytest.raises(
        ProbeSpecError, match="a http action cannot run against 'metrics', a prometheus target"
    ):
        executor.check(wrong_kind)
    needs_param = CommandRun(target="host", argv=["printf", "{text}"])
    executor.check(needs_param)
    with pytest.raises(ProbeSpecError, match="needs parameter 'text'"):
        await executor.run(needs_param, {}, run_id="p", timeout_s=1)
    with pytest.raises(ProbeSpecError, match="timeout must be positive"):
        await executor.run(needs_param, {"text": "x"}, run_id="p", timeout_s=0)


async def test_one_log_line_and_a_json_safe_result(executor: ActionExecutor) -> None:
    with capture_logs() as logs:
        result = await executor.run(
            CommandRun(target="host", argv=["printf", "%s %s", "{word}", 42]),
            {"word": "Ω"},
            run_id="a-9",
            timeout_s=2,
        )
    assert result.status == "succeeded", result.error
    assert result.output == "Ω 42"
    finished = [entry for entry in logs if entry["event"] == "action_finished"]
    assert len(finished) == 1
    assert {key: finished[0][key] for key in ("run_id", "target", "kind", "status")} == {
        "run_id": "a-9",
        "target": "host",
        "kind": "command",
        "status": "succeeded",
    }
    assert ActionResult.model_validate_json(result.model_dump_json()) == result


async def test_a_closed_executor_runs_nothing(executor: ActionExecutor) -> None:
    await executor.close()
    with pytest.raises(RuntimeError, match="closed"):
        await executor.run(CommandRun(target="host", argv=["printf", "x"]), {}, run_id="c", timeout_s=1)

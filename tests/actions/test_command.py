"""Command actions as real processes: argv only, success is exit code 0, nothing survives a timeout."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from bot.actions import ActionExecutor
from bot.probes import ProbeSpecError
from bot.runbooks.steps import CommandRun
from tests.actions.conftest import Executors
from tests.probes.conftest import make_targets

SECRET = "env-s3cret-value"


@pytest.fixture
def executor(executor_for: Executors, tmp_path: Path) -> ActionExecutor:
    return executor_for(
        make_targets(
            host={
                "kind": "command",
                "allowed_programs": ["printf", "sleep", "sh"],
                "cwd": str(tmp_path),
                "env": {"DEPLOY_TOKEN": SECRET},
                "max_output_bytes": 1024,
            }
        )
    )


def run(*argv: object) -> CommandRun:
    return CommandRun.model_validate({"target": "host", "argv": list(argv)})


def gone(pid: int) -> bool:
    """Dead (or a zombie waiting for a reaper) within a second: SIGKILL lands asynchronously."""
    deadline = time.monotonic() + 1.0
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


@pytest.mark.parametrize("value", ["$(reboot)", "; rm -rf /", "`id` && echo pwned", "*"])
async def test_a_parameter_is_one_literal_argument(
    executor: ActionExecutor, tmp_path: Path, value: str
) -> None:
    result = await executor.run(run("printf", "%s\\n", "{arg}"), {"arg": value}, run_id="p", timeout_s=2)
    assert result.status == "succeeded", result.error
    assert result.values == {"exit_code": 0}
    assert result.output == value
    assert list(tmp_path.iterdir()) == []


async def test_a_non_zero_exit_fails_with_the_output(executor: ActionExecutor) -> None:
    step = run("sh", "-c", 'echo "using $DEPLOY_TOKEN"; echo "unit not found" >&2; exit 3')
    result = await executor.run(step, {}, run_id="x", timeout_s=2)
    assert result.status == "failed"
    assert result.values == {"exit_code": 3}
    assert result.error == "exit code 3: unit not found"
    assert result.output == "using ***\nunit not found"
    assert SECRET not in result.model_dump_json()


async def test_long_output_keeps_the_last_lines(executor: ActionExecutor) -> None:
    script = "i=0; while [ $i -lt 500 ]; do echo line$i; i=$((i+1)); done"
    result = await executor.run(run("sh", "-c", script), {}, run_id="l", timeout_s=5)
    assert result.status == "succeeded"
    assert result.truncated
    lines = result.output.splitlines()
    assert lines[-1] == "line499"
    assert lines[0].startswith("line") and len(lines) < 500


async def test_an_option_like_value_is_refused(executor: ActionExecutor) -> None:
    result = await executor.run(run("printf", "%s\\n", "{arg}"), {"arg": "--help"}, run_id="o", timeout_s=2)
    assert result.status == "failed"
    assert "starts with '-'" in (result.error or "")


async def test_a_timeout_kills_the_whole_process_group(executor: ActionExecutor, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    started = time.monotonic()
    step = run("sh", "-c", f"echo $$ > {pids}; sleep 30 & echo $! >> {pids}; sleep 30")
    result = await executor.run(step, {}, run_id="t", timeout_s=0.5)
    assert result.status == "timeout"
    assert time.monotonic() - started < 1.0
    shell, child = (int(line) for line in pids.read_text().split())
    assert gone(shell)
    assert gone(child)
    plain = await executor.run(run("sleep", "30"), {}, run_id="s", timeout_s=0.3)
    assert plain.status == "timeout"


async def test_programs_off_the_allow_list_are_refused(executor: ActionExecutor) -> None:
    for step, message in [
        (run("rm", "-rf", "/tmp/x"), "rm is not an allowed program"),
        (run("/usr/bin/env", "sh"), "not an allowed program"),
        (run("{program}", "x"), "must be a constant"),
        (run("printf", None), "not a command argument"),
    ]:
        with pytest.raises(ProbeSpecError, match=message):
            executor.check(step)
        with pytest.raises(ProbeSpecError, match=message):
            await executor.run(step, {"program": "sh"}, run_id="r", timeout_s=1)
    executor.check(run("sh", "-c", "true"))


def sequence(*argvs: list[object]) -> CommandRun:
    first, *then = argvs
    return CommandRun.model_validate({"target": "host", "argv": first, "then": then})


async def test_a_sequence_runs_in_order_as_one_action(executor: ActionExecutor, tmp_path: Path) -> None:
    log = tmp_path / "ran"
    step = sequence(
        ["sh", "-c", f"echo stop >> {log}; echo stopped"],
        ["sleep", "0"],
        ["sh", "-c", f'echo "start $0" >> {log}; echo started', "{service}"],
    )
    assert step.param_names() == {"service"}
    result = await executor.run(step, {"service": "api"}, run_id="q", timeout_s=5)
    assert result.status == "succeeded", result.error
    assert log.read_text().splitlines() == ["stop", "start api"]
    assert result.values == {"exit_code": 0, "steps_run": 3}
    assert result.output.splitlines()[-2:] == [
        f'$ sh -c echo "start $0" >> {log}; echo started api',
        "started",
    ]
    assert result.output.startswith("$ sh -c")


async def test_a_sequence_stops_at_the_first_failure(executor: ActionExecutor, tmp_path: Path) -> None:
    log = tmp_path / "ran"
    step = sequence(
        ["sh", "-c", f"echo stop >> {log}"],
        ["sh", "-c", "echo 'no such service' >&2; exit 4"],
        ["sh", "-c", f"echo start >> {log}"],
    )
    result = await executor.run(step, {}, run_id="f", timeout_s=5)
    assert result.status == "failed"
    assert result.values == {"exit_code": 4, "steps_run": 2}
    assert result.error == "step 2 of 3 (sh): exit code 4: no such service — the steps after it were not run"
    assert log.read_text().splitlines() == ["stop"]


async def test_nothing_in_a_sequence_runs_if_any_part_is_refused(
    executor: ActionExecutor, tmp_path: Path
) -> None:
    log = tmp_path / "ran"
    first = ["sh", "-c", f"echo stop >> {log}"]
    refused = sequence(first, ["rm", "-rf", str(tmp_path)])
    with pytest.raises(ProbeSpecError, match="rm is not an allowed program"):
        executor.check(refused)
    with pytest.raises(ProbeSpecError, match="rm is not an allowed program"):
        await executor.run(refused, {}, run_id="r", timeout_s=2)
    bad_value = await executor.run(
        sequence(first, ["printf", "%s", "{service}"]), {"service": "--all"}, run_id="v", timeout_s=2
    )
    assert bad_value.status == "failed"
    assert "starts with '-'" in (bad_value.error or "")
    assert not log.exists()
    with pytest.raises(ValueError, match="mixes text and a placeholder"):
        sequence(first, ["printf", "x{service}"])


async def test_one_deadline_covers_the_whole_sequence(executor: ActionExecutor, tmp_path: Path) -> None:
    log = tmp_path / "ran"
    started = time.monotonic()
    step = sequence(["sleep", "0.3"], ["sleep", "0.3"], ["sh", "-c", f"echo start >> {log}"])
    result = await executor.run(step, {}, run_id="d", timeout_s=0.5)
    assert result.status == "timeout"
    assert time.monotonic() - started < 1.0
    assert not log.exists()

"""Command probes as real processes: argv only, capped output, and nothing survives a timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from pydantic import ValidationError

from bot.probes import CommandProbe, ProbeRunner, ProbeSpecError
from bot.targets import Targets
from tests.probes.conftest import make_targets

Runners = Callable[[Targets], ProbeRunner]
SECRET = "env-s3cret-value"


@pytest.fixture
def runner(runner_for: Runners, tmp_path: Path) -> ProbeRunner:
    return runner_for(
        make_targets(
            host={
                "kind": "command",
                "allowed_programs": ["echo", "printf", "sleep", "sh"],
                "cwd": str(tmp_path),
                "env": {"PROBE_TOKEN": SECRET},
                "max_output_bytes": 1024,
            }
        )
    )


def probe(*argv: str, **extra: object) -> CommandProbe:
    return CommandProbe.model_validate({"target": "host", "argv": list(argv), **extra})


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


async def test_output_and_exit_code(runner: ProbeRunner) -> None:
    result = await runner.run(probe("echo", "hello", "world"), {}, run_id="e", timeout_s=2)
    assert result.status == "ok", result.error
    assert result.rows == [["hello world"]]
    assert result.columns == ["output"]
    assert result.values["exit_code"] == 0
    assert result.values["output_lines"] == 1
    assert result.values["last_line"] == "hello world"
    assert not result.truncated
    failed = await runner.run(probe("sh", "-c", "echo oops >&2; exit 3"), {}, run_id="e", timeout_s=2)
    assert failed.status == "ok"  # the probe ran; a threshold on exit_code judges it
    assert failed.values["exit_code"] == 3
    assert failed.rows == [["oops"]]


@pytest.mark.parametrize(
    "value",
    [
        "$(reboot)",
        "; rm -rf /",
        "`id`",
        "a b  c",
        "*",
        "| cat /etc/passwd",
        "'\"",
        "Ω 🚨",
        "x" * 400,
        "{other}",
    ],
)
async def test_a_parameter_is_one_literal_argument(runner: ProbeRunner, tmp_path: Path, value: str) -> None:
    spec = probe("printf", "[%s]\\n", "{arg}", "{arg}")
    result = await runner.run(spec, {"arg": value}, run_id="a", timeout_s=2)
    assert result.status == "ok", result.error
    assert result.rows == [[f"[{value}]"], [f"[{value}]"]]
    assert list(tmp_path.iterdir()) == []


async def test_numbers_are_arguments_and_dangerous_values_are_refused(runner: ProbeRunner) -> None:
    spec = probe("printf", "%s\\n", "{arg}")
    assert (await runner.run(spec, {"arg": 42}, run_id="n", timeout_s=2)).rows == [["42"]]
    for value, reason in [
        ("--help", "starts with '-'"),
        ("a\x00b", "NUL byte"),
        (None, "cannot be a command"),
    ]:
        result = await runner.run(spec, {"arg": value}, run_id="n", timeout_s=2)
        assert result.status == "error"
        assert reason in (result.error or "")


async def test_output_is_capped_to_the_last_bytes(runner: ProbeRunner) -> None:
    script = "i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done"
    result = await runner.run(probe("sh", "-c", script, tail_lines=20), {}, run_id="c", timeout_s=5)
    assert result.status == "ok"
    assert result.truncated
    assert result.values["output_lines"] == 2000
    assert isinstance(result.values["output_bytes"], int)
    assert result.values["output_bytes"] > 1024
    assert result.values["last_line"] == "line1999"
    assert result.rows == [[f"line{i}"] for i in range(1980, 2000)]


async def test_a_timeout_kills_the_whole_process_group(runner: ProbeRunner, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"echo $$ > {pids}; sleep 30 & echo $! >> {pids}; wait"
    started = time.monotonic()
    result = await runner.run(probe("sh", "-c", script), {}, run_id="t", timeout_s=0.5)
    assert result.status == "timeout"
    assert result.error == "timed out after 0.5s"
    assert time.monotonic() - started < 1.0
    shell, child = (int(line) for line in pids.read_text().split())
    assert gone(shell)
    assert gone(child)


async def test_plain_sleep_times_out(runner: ProbeRunner) -> None:
    started = time.monotonic()
    result = await runner.run(probe("sleep", "30"), {}, run_id="t", timeout_s=0.5)
    assert result.status == "timeout"
    assert time.monotonic() - started < 1.0


async def test_background_children_do_not_outlive_a_finished_command(runner: ProbeRunner) -> None:
    result = await runner.run(
        probe("sh", "-c", "sleep 30 > /dev/null 2>&1 & echo $!"), {}, run_id="b", timeout_s=2
    )
    assert result.status == "ok"
    assert result.values["exit_code"] == 0
    assert gone(int(str(result.values["last_line"])))


async def test_environment_is_minimal_and_secrets_are_redacted(runner: ProbeRunner, tmp_path: Path) -> None:
    result = await runner.run(
        probe("sh", "-c", 'echo "token=$PROBE_TOKEN home=$HOME lang=$LANG"; pwd; read x || echo no-stdin'),
        {},
        run_id="env",
        timeout_s=2,
    )
    assert result.rows == [["token=*** home= lang=C.UTF-8"], [str(tmp_path)], ["no-stdin"]]
    assert SECRET not in result.model_dump_json()


async def test_programs_off_the_allow_list_are_refused(runner: ProbeRunner) -> None:
    with pytest.raises(ProbeSpecError, match="rm is not an allowed program"):
        await runner.run(probe("rm", "-rf", "/tmp/nothing"), {}, run_id="x", timeout_s=1)
    with pytest.raises(ProbeSpecError, match="not an allowed program"):
        await runner.run(probe("/usr/local/bin/echo", "x"), {}, run_id="x", timeout_s=1)
    runner.check(probe("sh", "-c", "true"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["systemctl", "status", "--unit={service}"], "mixes text and a placeholder"),
        (["echo", "pre{x}post"], "mixes text and a placeholder"),
        (["{program}", "x"], "the program must be a constant"),
        (["echo", "a\x00b"], "NUL byte"),
        ([], "at least 1 item"),
    ],
)
def test_bad_argv_templates_are_refused_at_validation(argv: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CommandProbe.model_validate({"target": "host", "argv": argv})


async def test_match_counts_the_output_lines_a_threshold_judges(runner: ProbeRunner) -> None:
    lines = "app-api-1 running unhealthy\napp-db-1 running healthy\napp-rag-1 exited\n"
    spec = probe("printf", lines, match=r"exited|unhealthy")
    result = await runner.run(spec, {}, run_id="m", timeout_s=2)
    assert result.values["matched_lines"] == 2
    assert result.values["exit_code"] == 0
    without = await runner.run(probe("printf", lines), {}, run_id="m", timeout_s=2)
    assert "matched_lines" not in without.values


def test_a_match_that_is_not_a_regular_expression_is_refused() -> None:
    with pytest.raises(ValidationError, match="not a regular expression"):
        probe("echo", "x", match="(unclosed")

"""A timeout over SSH kills the remote process and what it started, not only the channel (seen with `ps`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bot.actions import ActionExecutor
from bot.probes import CommandProbe, ProbeRunner
from bot.runbooks.steps import CommandRun
from bot.targets import Targets
from tests.probes.conftest import make_targets
from tests.ssh.sshd import Sshd

Runners = Callable[[Targets], ProbeRunner]
Executors = Callable[[Targets], ActionExecutor]


async def remote_processes(sshd: Sshd, args: str) -> list[str]:
    """The remote processes whose command line is `args` (or ends with it), as `ps` over SSH lists them."""
    listing = await sshd.shell("ps -ww -eo pid=,pgid=,args=")
    return [line for line in listing.splitlines() if line.split(None, 2)[2].endswith(args)]


async def gone(sshd: Sshd, args: str) -> bool:
    """Nothing running `args` left within a second (SIGKILL lands asynchronously)."""
    for _ in range(20):
        if not await remote_processes(sshd, args):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_probe_timeout_kills_the_remote_process_group(sshd: Sshd, runner_for: Runners) -> None:
    runner = runner_for(make_targets(box=sshd.target(allowed_programs=["sh"])))
    # A foreground sleep and a background one, both children of the program: distinctive lengths.
    script = "sleep 3141 & sleep 2718; wait"
    spec = CommandProbe.model_validate({"target": "box", "argv": ["sh", "-c", script]})
    started = time.monotonic()
    running = asyncio.create_task(runner.run(spec, {}, run_id="t", timeout_s=3))
    # The checks below would mean nothing if these had never run: the wrapper, its sh, two sleeps.
    expected = {"sleep 3141": 1, "sleep 2718": 1, script: 2}
    seen: dict[str, int] = {}
    while seen != expected and time.monotonic() - started < 2.5:
        seen = {args: len(await remote_processes(sshd, args)) for args in expected}
    assert seen == expected
    result = await running
    assert result.status == "timeout"
    assert result.error == "timed out after 3s"
    assert time.monotonic() - started < 4.5
    assert await gone(sshd, "sleep 3141"), await remote_processes(sshd, "sleep 3141")
    assert await gone(sshd, "sleep 2718")
    assert await gone(sshd, script)


async def test_an_action_timeout_kills_the_remote_process(sshd: Sshd, executor_for: Executors) -> None:
    executor = executor_for(make_targets(box=sshd.target(allowed_programs=["sleep"])))
    step = CommandRun.model_validate({"target": "box", "argv": ["sleep", "1618"]})
    running = asyncio.create_task(executor.run(step, {}, run_id="t", timeout_s=2))
    started = time.monotonic()
    while not await remote_processes(sshd, "sleep 1618") and time.monotonic() - started < 1.5:
        pass
    assert await remote_processes(sshd, "sleep 1618"), "the action never started"
    result = await running
    assert result.status == "timeout"
    assert result.error == "timed out after 2s; it may or may not have taken effect"
    assert await gone(sshd, "sleep 1618")


async def test_background_children_do_not_outlive_a_finished_command(sshd: Sshd, runner_for: Runners) -> None:
    runner = runner_for(make_targets(box=sshd.target(allowed_programs=["sh"])))
    spec = CommandProbe.model_validate(
        {"target": "box", "argv": ["sh", "-c", "sleep 1414 > /dev/null 2>&1 & echo started"]}
    )
    result = await runner.run(spec, {}, run_id="b", timeout_s=5)
    assert result.status == "ok", result.error
    assert result.values["exit_code"] == 0
    assert await gone(sshd, "sleep 1414")

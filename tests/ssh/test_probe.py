"""Command probes over SSH: the same findings as a local run, on one reused connection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.probes import CommandProbe, ProbeRunner
from bot.targets import Targets
from tests.probes.conftest import make_targets
from tests.ssh.sshd import Sshd

Runners = Callable[[Targets], ProbeRunner]


def probe(*argv: str, **extra: object) -> CommandProbe:
    return CommandProbe.model_validate({"target": "box", "argv": list(argv), **extra})


async def test_a_probe_runs_on_the_remote_host(sshd: Sshd, runner_for: Runners) -> None:
    runner = runner_for(make_targets(box=sshd.target(allowed_programs=["echo", "sh"], cwd=str(sshd.home))))
    result = await runner.run(probe("echo", "hello", "world"), {}, run_id="p", timeout_s=5)
    assert result.status == "ok", result.error
    assert result.rows == [["hello world"]]
    assert result.values["exit_code"] == 0
    assert result.values["last_line"] == "hello world"
    failed = await runner.run(probe("sh", "-c", "pwd; echo oops >&2; exit 3"), {}, run_id="p", timeout_s=5)
    assert failed.status == "ok"  # it ran; a threshold on exit_code judges it, as locally
    assert failed.values["exit_code"] == 3
    assert failed.rows == [[str(sshd.home)], ["oops"]]


async def test_output_is_capped_to_the_last_bytes_as_locally(sshd: Sshd, runner_for: Runners) -> None:
    runner = runner_for(make_targets(box=sshd.target(allowed_programs=["sh"], max_output_bytes=1024)))
    script = "i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done"
    result = await runner.run(probe("sh", "-c", script, tail_lines=1000), {}, run_id="c", timeout_s=10)
    assert result.status == "ok", result.error
    assert result.truncated
    assert result.values["output_lines"] == 2000
    assert result.values["output_bytes"] == sum(len(f"line{i}\n") for i in range(2000))
    assert result.values["last_line"] == "line1999"
    # Only the whole lines within the last 1024 bytes were kept (9 bytes each: line1887…line1999).
    kept = 1024 // len("line1999\n")
    assert result.rows == [[f"line{i}"] for i in range(2000 - kept, 2000)]


async def test_one_connection_is_reused_and_opened_again_after_a_loss(
    sshd: Sshd, runner_for: Runners
) -> None:
    runner = runner_for(make_targets(box=sshd.target(allowed_programs=["sh", "echo"])))
    # The parent of the wrapper (this shell's parent) is sshd's process for this connection.
    who = probe("sh", "-c", "ps -o ppid= -p $PPID")
    first = await runner.run(who, {}, run_id="r", timeout_s=5)
    second = await runner.run(who, {}, run_id="r", timeout_s=5)
    assert first.status == second.status == "ok"
    assert first.values["last_line"] == second.values["last_line"], "the connection was not reused"
    lost = await runner.run(
        probe("sh", "-c", "kill -9 $(ps -o ppid= -p $PPID); sleep 5"), {}, run_id="r", timeout_s=5
    )
    assert lost.status == "error"
    assert lost.error == "cannot reach box over SSH: the connection was lost during the command"
    again = await runner.run(who, {}, run_id="r", timeout_s=5)
    assert again.status == "ok", again.error
    assert again.values["last_line"] != first.values["last_line"]


async def test_sessions_per_host_are_limited(sshd: Sshd, runner_for: Runners) -> None:
    log = sshd.home / "sessions.log"
    log.unlink(missing_ok=True)
    runner = runner_for(make_targets(box=sshd.target(allowed_programs=["sh"], ssh={"max_sessions": 2})))
    script = f"echo start >> {log}; sleep 0.3; echo end >> {log}"
    results = await asyncio.gather(
        *(runner.run(probe("sh", "-c", script), {}, run_id="m", timeout_s=10) for _ in range(5))
    )
    assert [r.status for r in results] == ["ok"] * 5
    running = most = 0
    for line in log.read_text().split():
        running += 1 if line == "start" else -1
        most = max(most, running)
    assert most == 2


async def test_a_session_the_server_refuses_leaves_the_others_running(
    sshd: Sshd, runner_for: Runners
) -> None:
    # More at once than the test sshd's MaxSessions (20): the extra ones are refused by the
    # server, and the connection the others run on must survive that.
    runner = runner_for(make_targets(box=sshd.target(allowed_programs=["sh"], ssh={"max_sessions": 24})))
    spec = probe("sh", "-c", "sleep 0.5; echo done")
    results = await asyncio.gather(*(runner.run(spec, {}, run_id="x", timeout_s=10) for _ in range(24)))
    done = [r for r in results if r.status == "ok"]
    refused = [r for r in results if r.status == "error"]
    assert len(done) == 20 and all(r.values["last_line"] == "done" for r in done)
    assert len(refused) == 4
    assert all(
        (r.error or "").startswith("cannot reach box over SSH: the server refused a session") for r in refused
    )

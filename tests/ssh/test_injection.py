"""The injection corpus of tests/security cannot escape the remote argv: each payload is one argument.

SSH hands the remote login shell a command line, so this is where quoting matters: a payload
that reached that shell as code would create the canary file (on this same machine, since the
sshd under test is local), and a payload split into words would print more than one `[…]`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from bot.actions import ActionExecutor
from bot.probes import CommandProbe, ProbeRunner
from bot.runbooks.steps import CommandRun
from bot.targets import Targets
from tests.probes.conftest import make_targets
from tests.security.test_injection import CANARY_FILE, PAYLOADS
from tests.ssh.sshd import Sshd

Runners = Callable[[Targets], ProbeRunner]
Executors = Callable[[Targets], ActionExecutor]


def corpus(canary: Path) -> list[str]:
    return [payload.replace(CANARY_FILE, str(canary)) for payload in PAYLOADS]


def refused(payload: str) -> bool:
    """What the argument check refuses before anything runs, locally or remotely."""
    return payload.startswith("-") or "\x00" in payload


async def test_no_payload_reaches_the_remote_shell_in_a_probe(
    sshd: Sshd, runner_for: Runners, tmp_path: Path
) -> None:
    canary = tmp_path / "pwned"
    box = sshd.target(allowed_programs=["printf"], cwd=str(tmp_path), ssh={"max_sessions": 8})
    runner = runner_for(make_targets(box=box))
    spec = CommandProbe.model_validate(
        {"target": "box", "argv": ["printf", "[%s]\\n", "{arg}"], "tail_lines": 5}
    )
    payloads = corpus(canary)
    results = await asyncio.gather(
        *(runner.run(spec, {"arg": payload}, run_id="inject", timeout_s=20) for payload in payloads)
    )
    ran = 0
    for payload, result in zip(payloads, results, strict=True):
        if refused(payload):
            assert result.status == "error" and "exit_code" not in result.values, payload
            continue
        ran += 1
        assert result.status == "ok", (payload, result.error)
        assert result.values["exit_code"] == 0, payload
        printed = f"[{payload}]\n"
        assert result.values["output_bytes"] == len(printed.encode()), payload
        if len(payload) < 400:
            assert [row[0] for row in result.rows] == printed.splitlines(), payload
    assert ran == len([p for p in PAYLOADS if not refused(p)]) > 30
    assert not canary.exists(), "a payload was run by the remote shell"
    assert [p.name for p in tmp_path.iterdir()] == []


async def test_no_payload_reaches_the_remote_shell_in_an_action_sequence(
    sshd: Sshd, executor_for: Executors, tmp_path: Path
) -> None:
    canary = tmp_path / "pwned"
    box = sshd.target(allowed_programs=["printf", "true"], ssh={"max_sessions": 8})
    executor = executor_for(make_targets(box=box))
    step = CommandRun.model_validate(
        {"target": "box", "argv": ["true", "{arg}"], "then": [["printf", "<%s>", "{arg}"]]}
    )
    payloads = [payload for payload in corpus(canary) if not refused(payload)]
    results = await asyncio.gather(
        *(executor.run(step, {"arg": payload}, run_id="inject", timeout_s=20) for payload in payloads)
    )
    for payload, result in zip(payloads, results, strict=True):
        assert result.status == "succeeded", (payload, result.error)
        assert result.values == {"exit_code": 0, "steps_run": 2}
        if len(payload) < 400:  # the last command's output, as printf printed it
            assert result.output.endswith("\n".join(f"<{payload}>".splitlines())), payload
    assert not canary.exists(), "a payload was run by the remote shell"

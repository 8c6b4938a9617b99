"""The link itself: only a pinned host key is trusted, a refused key or a dead port says so, never OK."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.probes import CommandProbe, ProbeRunner
from bot.targets import Targets, TargetsError
from tests.probes.conftest import make_targets
from tests.ssh.sshd import Sshd, generate_key, known_hosts_line

Runners = Callable[[Targets], ProbeRunner]


def touch(marker: str) -> CommandProbe:
    return CommandProbe.model_validate({"target": "box", "argv": ["touch", marker]})


async def test_a_changed_host_key_is_refused_and_nothing_runs(sshd: Sshd, runner_for: Runners) -> None:
    impostor = known_hosts_line(generate_key(), sshd.port)
    runner = runner_for(
        make_targets(box=sshd.target(allowed_programs=["touch"], ssh={"known_hosts": impostor}))
    )
    marker = sshd.home / "ran-despite-host-key"
    result = await runner.run(touch(str(marker)), {}, run_id="k", timeout_s=5)
    assert result.status == "error"
    assert result.error == "cannot reach box over SSH: host key mismatch (not a key pinned in known_hosts)"
    assert not marker.exists()


def test_a_host_key_pinned_for_another_host_is_refused_at_load(sshd: Sshd) -> None:
    other = known_hosts_line(generate_key(), sshd.port + 1)
    with pytest.raises(TargetsError, match=r"known_hosts has no key for \[127.0.0.1\]:\d+"):
        make_targets(box=sshd.target(ssh={"known_hosts": other}))
    with pytest.raises(TargetsError, match="known_hosts has no key for"):
        make_targets(box=sshd.target(ssh={"known_hosts": "trust me"}))


async def test_a_refused_key_fails_with_the_reason(sshd: Sshd, runner_for: Runners) -> None:
    stranger = generate_key()
    runner = runner_for(
        make_targets(
            box=sshd.target(
                allowed_programs=["touch"], ssh={"private_key": stranger, "private_key_file": None}
            )
        )
    )
    marker = sshd.home / "ran-with-a-stranger-key"
    result = await runner.run(touch(str(marker)), {}, run_id="k", timeout_s=5)
    assert result.status == "error"
    assert result.error == f"cannot reach box over SSH: the key was refused for user {sshd.user}"
    assert not marker.exists()
    assert stranger.splitlines()[1] not in result.model_dump_json()


async def test_a_host_that_does_not_answer_is_an_error_not_ok(sshd: Sshd, runner_for: Runners) -> None:
    from tests.conftest import free_port

    port = free_port()
    closed = sshd.target(
        allowed_programs=["touch"], ssh={"port": port, "known_hosts": known_hosts_line(generate_key(), port)}
    )
    runner = runner_for(make_targets(box=closed))
    result = await runner.run(touch("/nonexistent"), {}, run_id="k", timeout_s=5)
    assert result.status == "error"
    assert result.error == "cannot reach box over SSH: Connection refused"

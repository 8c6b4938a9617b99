"""Keys, passphrases and the target's secrets never reach logs, results or the remote command line."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from bot.probes import CommandProbe, ProbeRunner
from bot.targets import CommandTarget, Targets
from bot.transport.ssh import command_line
from tests.ssh.sshd import Sshd, generate_key, known_hosts_line

Runners = Callable[[Targets], ProbeRunner]
TOKEN = "deploy-t0ken-s3cret"
PASSPHRASE = "correct horse battery staple"


def probe(*argv: str) -> CommandProbe:
    return CommandProbe.model_validate({"target": "box", "argv": list(argv)})


async def test_no_secret_in_logs_results_or_command_lines(
    sshd: Sshd, runner_for: Runners, caplog: pytest.LogCaptureFixture
) -> None:
    key = generate_key(passphrase=PASSPHRASE)
    sshd.authorize(key, PASSPHRASE)
    ssh = {"private_key": "${SSH_KEY}", "private_key_file": None, "passphrase": "${SSH_PASSPHRASE}"}
    document = {
        "targets": {
            "box": sshd.target(allowed_programs=["sh"], env={"DEPLOY_TOKEN": "${TOKEN}"}, ssh=ssh),
            "impostor": sshd.target(
                allowed_programs=["sh"],
                ssh=ssh | {"known_hosts": known_hosts_line(generate_key(), sshd.port)},
            ),
        }
    }
    environ = {"SSH_KEY": key, "SSH_PASSPHRASE": PASSPHRASE, "TOKEN": TOKEN}
    targets = Targets.parse(document, source="test", environ=environ)
    runner = runner_for(targets)
    secrets = [TOKEN, PASSPHRASE, key.strip(), *(line for line in key.splitlines()[1:-1])]
    assert all(secret in targets.secrets() for secret in secrets)
    caplog.set_level(logging.DEBUG)
    with capture_logs() as events:
        shown = await runner.run(
            probe("sh", "-c", 'echo "token=$DEPLOY_TOKEN"'), {}, run_id="s", timeout_s=10
        )
        refused = await runner.run(
            CommandProbe.model_validate({"target": "impostor", "argv": ["sh", "-c", "true"]}),
            {},
            run_id="s",
            timeout_s=10,
        )
    # The variable reached the remote program (and was redacted from what it printed).
    assert shown.status == "ok", shown.error
    assert shown.rows == [["token=***"]]
    assert refused.status == "error"
    assert "host key mismatch" in (refused.error or "")
    logged = repr(events) + caplog.text
    assert "ssh_connect_failed" in logged and "probe_finished" in logged
    line = command_line(targets.get_kind("box", CommandTarget), "sh", ["-c", "true"], "opsbot-x")
    for secret in secrets:
        assert secret not in logged
        assert secret not in shown.model_dump_json() + refused.model_dump_json()
        assert secret not in line
        assert secret not in repr(targets.get("box"))

"""SSH targets in the registry: what a targets file must say, checked at load; and the line sent."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import cli
from bot.targets import CommandTarget, Targets, TargetsError
from bot.transport.ssh import command_line, env_lines, kill_line
from tests.probes.conftest import make_targets
from tests.ssh.sshd import generate_key, known_hosts_line

ROOT = Path(__file__).resolve().parents[2]
KEY = generate_key()
PINNED = known_hosts_line(generate_key(), 2222)


def ssh_target(**overrides: Any) -> dict[str, Any]:
    ssh = {"host": "127.0.0.1", "port": 2222, "user": "ops", "private_key": KEY, "known_hosts": PINNED}
    changes = overrides.pop("ssh", {})
    target = {
        "kind": "command",
        "transport": "ssh",
        "allowed_programs": ["systemctl", "/usr/local/bin/deploy.sh", "docker"],
        "ssh": None if changes is None else ssh | changes,
    } | overrides
    return {key: value for key, value in target.items() if value is not None}


def box(**overrides: Any) -> CommandTarget:
    target = make_targets(box=ssh_target(**overrides)).get("box")
    assert isinstance(target, CommandTarget)
    return target


def test_remote_programs_are_not_resolved_here_and_sudo_is_per_program() -> None:
    target = box(ssh={"sudo": ["systemctl"]}, cwd="/srv/app does not exist here")
    assert target.program_path("systemctl") == "systemctl"  # the remote PATH finds it
    assert target.program_path("/usr/local/bin/deploy.sh") == "/usr/local/bin/deploy.sh"
    assert target.program_path("rm") is None
    assert target.uses_sudo("systemctl") and not target.uses_sudo("docker")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ssh": None}, "an `ssh:` block is required"),
        ({"transport": "local", "allowed_programs": ["sh"]}, "only then"),
        ({"ssh": {"sudo": ["rm"]}}, "ssh.sudo names programs that are not allowed: rm"),
        ({"allowed_programs": ["bin/deploy.sh"]}, "absolute path or a bare name"),
        ({"allowed_programs": ["-oProxyCommand=x"]}, "is not a program name"),
        ({"ssh": {"host": "-oProxyCommand=touch"}}, "host name or an IP address"),
        ({"ssh": {"host": "a b"}}, "host name or an IP address"),
        ({"ssh": {"user": "ops; id"}}, "must be a user name"),
        ({"ssh": {"private_key": None}}, "exactly one of private_key_file and private_key"),
        ({"ssh": {"private_key_file": "/etc/hostname"}}, "exactly one of"),
        ({"ssh": {"private_key": "not a key"}}, "the private key cannot be read"),
        ({"ssh": {"port": 22}}, r"known_hosts has no key for 127.0.0.1;"),
        ({"ssh": {"max_sessions": 0}}, "greater than or equal to 1"),
        ({"cwd": "relative/dir"}, "not an absolute directory"),
        ({"env": {"TOKEN": "two\nlines"}}, "line break"),
    ],
)
def test_bad_ssh_targets_are_refused_at_load(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(TargetsError, match=message):
        box(**overrides)


def test_a_passphrase_protected_key_needs_its_passphrase(tmp_path: Path) -> None:
    key_file = tmp_path / "id_ed25519"
    generate_key(key_file, passphrase="s3cret-passphrase")
    with pytest.raises(TargetsError, match="wrong format or passphrase") as refused:
        box(ssh={"private_key": None, "private_key_file": str(key_file)})
    assert "s3cret" not in str(refused.value)
    target = box(
        ssh={"private_key": None, "private_key_file": str(key_file), "passphrase": "s3cret-passphrase"}
    )
    assert target.ssh is not None
    assert {"s3cret-passphrase", key_file.read_text().strip()} <= target.secrets()
    assert "s3cret" not in repr(target)


def test_the_command_line_quotes_every_element_and_carries_no_secret() -> None:
    target = box(ssh={"sudo": ["systemctl"]}, cwd="/srv/my app", env={"TOKEN": "t0ken-value"})
    args = ["restart", "$(reboot); `id` 'x' \"y\" \\ * ~ \n"]
    line = command_line(target, "systemctl", args, "opsbot-1234")
    words = shlex.split(line)
    assert words[:4] == ["exec", "/bin/sh", "-c", words[3]]
    assert words[4:] == ["opsbot-1234", "/srv/my app", "sudo", "-n", "--", "systemctl", *args]
    assert shlex.split(command_line(target, "docker", ["ps"], "t"))[4:] == [
        "t",
        "/srv/my app",
        "docker",
        "ps",
    ]
    assert "t0ken-value" not in line
    assert env_lines(target) == b"TOKEN=t0ken-value\n"
    assert (
        kill_line(42, sudo=False)
        == "kill -TERM -- -42 42 2>/dev/null; kill -KILL -- -42 42 2>/dev/null; exit 0"
    )
    assert "sleep" in kill_line(42, sudo=True)


def test_opsbot_targets_sudoers_prints_the_lines_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    targets = tmp_path / "targets.yml"
    app_host = ssh_target(ssh={"sudo": ["systemctl", "/usr/local/bin/deploy.sh"], "host": "app.internal"})
    app_host["ssh"]["known_hosts"] = PINNED.replace("[127.0.0.1]:2222", "[app.internal]:2222")
    targets.write_text(
        yaml.safe_dump(
            {"targets": {"app_host": app_host, "here": {"kind": "command", "allowed_programs": ["df"]}}}
        )
    )
    monkeypatch.setenv("OPSBOT_TARGETS", str(targets))
    printed = CliRunner().invoke(cli, ["targets", "sudoers", "app_host"])
    assert printed.exit_code == 0, printed.output
    lines = printed.output.splitlines()
    assert "ops ALL=(root) NOPASSWD: /usr/local/bin/deploy.sh" in lines
    assert "ops ALL=(root) NOPASSWD: <path of systemctl>" in lines  # visudo refuses it until filled in
    assert "visudo -f /etc/sudoers.d/opsbot-app_host" in printed.output
    assert KEY.splitlines()[1] not in printed.output
    local = CliRunner().invoke(cli, ["targets", "sudoers", "here"])
    assert local.exit_code == 2
    assert "runs commands locally" in local.output
    unknown = CliRunner().invoke(cli, ["targets", "sudoers", "nope"])
    assert unknown.exit_code == 2
    assert "unknown target" in unknown.output


def test_the_example_ssh_target_is_valid() -> None:
    example = yaml.safe_load((ROOT / "deploy" / "targets.example.yml").read_text())
    document = {"targets": {"app_host": example["targets"]["app_host"]}}
    environ = {"APP_DB_DSN": "postgresql://app:pw@db/app", "APP_HOST_SSH_KEY": KEY}
    target = Targets.parse(document, source="example", environ=environ).get_kind("app_host", CommandTarget)
    assert target.transport == "ssh" and target.ssh is not None
    assert target.uses_sudo("systemctl")
    assert example["targets"]["host"]["transport"] == "local"

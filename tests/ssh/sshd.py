"""A real OpenSSH server for the SSH transport tests: private, on a free loopback port, stopped after.

The server gets a generated host key, and trusts a generated user key through an
`AuthorizedKeysFile` in its own temporary directory; the current user (root here and in CI) logs
in with it. No PAM, no password, no `~/.ssh` of anyone's is read or written.

    def test_x(sshd: Sshd) -> None:
        targets = make_targets(box=sshd.target(allowed_programs=["echo"]))
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from tests.conftest import free_port

SSHD = "/usr/sbin/sshd"
NOT_TESTED = (
    "SSH transport NOT TESTED: /usr/sbin/sshd is missing — install Debian's openssh-server "
    "(apt-get install openssh-server) to run tests/ssh"
)


@dataclass(frozen=True)
class Sshd:
    """A running sshd: where it listens, the key it shows, and the user key it accepts."""

    port: int
    user: str
    home: Path
    known_hosts: str  # the pinned line, as `ssh-keyscan -p PORT 127.0.0.1` prints it
    user_key: str  # OpenSSH private key text (unencrypted)
    user_key_file: Path
    log: Path

    def target(self, **overrides: Any) -> dict[str, Any]:
        """A `command` target over SSH to this server, as a targets file would say it."""
        ssh = {
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.user,
            "private_key_file": str(self.user_key_file),
            "known_hosts": self.known_hosts,
            "connect_timeout": 5,
        } | overrides.pop("ssh", {})
        return {"kind": "command", "transport": "ssh", "allowed_programs": ["echo"], "ssh": ssh} | overrides

    def authorize(self, private_key: str, passphrase: str | None = None) -> None:
        """Accept another user key from now on."""
        public = asyncssh.import_private_key(private_key, passphrase).export_public_key("openssh")
        with (self.home / "authorized_keys").open("ab") as keys:
            keys.write(public)

    async def shell(self, line: str) -> str:
        """Run `line` on the server through a connection of the test's own (to look with `ps`)."""
        async with asyncssh.connect(
            "127.0.0.1",
            self.port,
            username=self.user,
            client_keys=[asyncssh.import_private_key(self.user_key)],
            known_hosts=asyncssh.import_known_hosts(self.known_hosts),
            config=None,
            agent_path=None,
        ) as conn:
            result = await conn.run(line, check=False)
            return str(result.stdout)


def generate_key(path: Path | None = None, passphrase: str | None = None) -> str:
    """A fresh ed25519 private key in OpenSSH format (written to `path`, mode 600, if given)."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    # Few KDF rounds: the test is about handling the passphrase, not the strength of the KDF.
    text = key.export_private_key("openssh", passphrase, rounds=4, ignore_few_rounds=True).decode()
    if path is not None:
        path.write_text(text)
        path.chmod(0o600)
    return text


def known_hosts_line(private_key: str, port: int) -> str:
    public = asyncssh.import_private_key(private_key).export_public_key("openssh").decode().split()
    return f"[127.0.0.1]:{port} {public[0]} {public[1]}\n"


def _config(home: Path, port: int) -> Path:
    config = home / "sshd_config"
    config.write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {home / 'host_key'}\n"
        f"AuthorizedKeysFile {home / 'authorized_keys'}\n"
        f"PidFile {home / 'sshd.pid'}\n"
        "StrictModes no\n"
        "UsePAM no\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\n"
        "MaxSessions 20\n"
        "MaxStartups 50\n"
        "LogLevel VERBOSE\n"
    )
    return config


def _wait_for_banner(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sshd exited at start: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(64).startswith(b"SSH-2.0"):
                    return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail(f"sshd did not answer on port {port}: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A private sshd for the whole session; skipped, loudly, only where openssh-server is missing."""
    if not (os.path.isfile(SSHD) and os.access(SSHD, os.X_OK)):
        pytest.skip(NOT_TESTED)
    home = tmp_path_factory.mktemp("sshd")
    home.chmod(0o700)
    host_key = generate_key(home / "host_key")
    user_key = generate_key(home / "user_key")
    public = asyncssh.import_private_key(user_key).export_public_key("openssh").decode()
    (home / "authorized_keys").write_text(public)
    # sshd run as root insists on its privilege separation directory, which Debian makes at boot.
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    port = free_port()
    log = home / "sshd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(_config(home, port))], stdout=out, stderr=out)
    _wait_for_banner(proc, port, log)
    yield Sshd(
        port=port,
        user=getpass.getuser(),
        home=home,
        known_hosts=known_hosts_line(host_key, port),
        user_key=user_key,
        user_key_file=home / "user_key",
        log=log,
    )
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)

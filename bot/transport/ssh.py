"""The SSH transport: an allowed program run on a remote host, with the local runner's guarantees.

One connection per target, opened on first use and opened again after it is lost; at most
`max_sessions` commands at a time on it. The server must present a key pinned in the target's
`known_hosts`: an unknown or changed key is refused, never learnt.

SSH hands the remote login shell one command line, so the argv is sent as one: every element
quoted with `shlex.quote`, after a fixed POSIX `sh` wrapper that

- prints a token of this run and its PID first: sshd starts each session in a session (and
  process group) of its own, so that PID is the group every process of the command belongs to.
  What the login shell printed before it (a `.bashrc` saying something) is skipped;
- reads the target's `env` as `NAME=value` lines from stdin and exports them (secrets never
  appear in a command line, where `ps` and sshd's logs would show them), then closes stdin;
- changes to `cwd` if one is set, and runs the program with stdin closed, through `sudo -n --`
  when the target lists it under `ssh.sudo` (`-n`: fail at once instead of waiting for a
  password nobody types);
- when the program exits, sends SIGTERM to what is left of its process group (what it started in
  the background) and exits with the program's status (128+N if a signal N ended it).

A run cut short — timeout, cancellation — costs a second session that kills the process group
(SIGTERM, then SIGKILL), so nothing the command started outlives it, as with a local run. Closing
the channel alone would leave the process running until it next wrote to its closed output.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shlex
from contextlib import suppress
from dataclasses import dataclass, field

import asyncssh

from bot.logs import get_logger
from bot.targets import CommandTarget, SshSettings
from bot.transport.output import Finished, read_tail

log = get_logger(__name__)

_WRAPPER = (
    'echo "$0 $$"; '
    'while IFS= read -r kv; do export "$kv"; done; '
    "export LANG=C.UTF-8; "
    'if [ -n "$1" ]; then cd -- "$1" || exit 126; fi; '
    "shift; "
    '"$@" </dev/null; rc=$?; '
    'trap "" TERM; kill -TERM 0 2>/dev/null; exit "$rc"'
)
_SUDO = ("sudo", "-n", "--")
_KILL_TIMEOUT_S = 5.0
# How long a sudo'd command has between SIGTERM (which sudo passes on to it) and SIGKILL (which
# reaches only sudo itself: the command runs as root, out of our user's reach).
_SUDO_GRACE_S = 1
_PID_LINE_TIMEOUT_S = 2.0
# Lines a login shell may print before the wrapper starts (a chatty .bashrc), skipped.
_CHATTER_LINES = 1000
_KEEPALIVE_S = 15.0
_FAILURE_MEMORY_S = 2.0
_LOST = "cannot reach {name} over SSH: the connection was lost during the command"


class HostUnreachable(Exception):
    """An SSH target could not be reached, refused our key or showed an unpinned host key."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def command_line(target: CommandTarget, program: str, args: list[str], token: str) -> str:
    """The one line the remote login shell runs: the wrapper and the argv, each element quoted.

    `token` is the wrapper's `$0`, which it prints before its PID.
    """
    prefix = _SUDO if target.uses_sudo(program) else ()
    cwd = str(target.cwd) if target.cwd is not None else ""
    return shlex.join(["exec", "/bin/sh", "-c", _WRAPPER, token, cwd, *prefix, program, *args])


def kill_line(pid: int, *, sudo: bool) -> str:
    """Kill the process group `pid` leads (and `pid` itself, should it not lead one)."""
    grace = f"sleep {_SUDO_GRACE_S}; " if sudo else ""
    return f"kill -TERM -- -{pid} {pid} 2>/dev/null; {grace}kill -KILL -- -{pid} {pid} 2>/dev/null; exit 0"


def env_lines(target: CommandTarget) -> bytes:
    """The target's environment as the wrapper reads it: one `NAME=value` line each."""
    return b"".join(f"{name}={value.get_secret_value()}\n".encode() for name, value in target.env.items())


@dataclass
class _Link:
    """One target's connection, the lock that opens it once, and its session slots."""

    target: CommandTarget  # held so the id() this link is filed under stays this target's
    name: str
    settings: SshSettings
    sessions: asyncio.Semaphore
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    conn: asyncssh.SSHClientConnection | None = None
    # The last failed attempt to connect (when, why): the checks of one diagnosis that queued
    # behind it get its answer at once instead of each waiting out its own connect_timeout.
    failed: tuple[float, str] | None = None

    async def connection(self) -> asyncssh.SSHClientConnection:
        async with self.lock:
            if self.conn is not None and not self.conn.is_closed():
                return self.conn
            now = asyncio.get_running_loop().time()
            if self.failed is not None and now - self.failed[0] < _FAILURE_MEMORY_S:
                raise HostUnreachable(self.failed[1])
            try:
                self.conn = await connect(self.settings, self.name)
            except HostUnreachable as exc:
                self.failed = (asyncio.get_running_loop().time(), exc.message)
                raise
            self.failed = None
            return self.conn

    async def start(self, line: str) -> tuple[asyncssh.SSHClientConnection, asyncssh.SSHClientProcess[bytes]]:
        """Open a session running `line`; a connection found dead is opened again, once.

        A session refused on a live connection (the server's MaxSessions) leaves the connection,
        and the commands running on it, alone.
        """
        for retry in (False, True):
            conn = await self.connection()
            try:
                process = await conn.create_process(line, encoding=None, stderr=asyncssh.STDOUT)
                return conn, process
            except (asyncssh.Error, ConnectionError) as exc:
                if retry or not conn.is_closed():
                    raise HostUnreachable(unreachable(self.name, exc, self.settings)) from None
        raise AssertionError("unreachable")

    async def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()
            await conn.wait_closed()


class SshHosts:
    """The SSH connections of every SSH target used so far, one each, closed together."""

    def __init__(self) -> None:
        self._links: dict[int, _Link] = {}

    def _link(self, target: CommandTarget, name: str) -> _Link:
        assert target.ssh is not None  # the caller picked this transport for an ssh target
        link = self._links.get(id(target))
        if link is None:
            sessions = asyncio.Semaphore(target.ssh.max_sessions)
            link = self._links[id(target)] = _Link(target, name, target.ssh, sessions)
        return link

    async def run(self, target: CommandTarget, name: str, program: str, args: list[str]) -> Finished:
        """Run `program` with whole arguments on `target`'s host; the output capped as locally."""
        link = self._link(target, name)
        token = f"opsbot-{secrets.token_hex(8)}"
        async with link.sessions:
            conn, process = await link.start(command_line(target, program, args, token))
            return await _finish(link, conn, process, token, sudo=target.uses_sudo(program))

    async def close(self) -> None:
        links, self._links = list(self._links.values()), {}
        for link in links:
            await link.close()


async def connect(settings: SshSettings, name: str) -> asyncssh.SSHClientConnection:
    """A connection authenticated with the target's key to a server showing a pinned host key."""
    try:
        return await asyncssh.connect(
            settings.host,
            settings.port,
            username=settings.user,
            client_keys=[settings.client_key],
            known_hosts=settings.pinned_hosts,
            # Nothing from this machine's ~/.ssh, agent or CA bundle: the target says it all.
            config=None,
            agent_path=None,
            x509_trusted_certs=None,
            preferred_auth="publickey",
            connect_timeout=settings.connect_timeout,
            keepalive_interval=_KEEPALIVE_S,
        )
    except (asyncssh.Error, OSError, TimeoutError) as exc:
        message = unreachable(name, exc, settings)
        log.warning("ssh_connect_failed", target=name, reason=message)
        raise HostUnreachable(message) from None


def unreachable(name: str, exc: BaseException, settings: SshSettings) -> str:
    """'cannot reach app_host over SSH: host key mismatch' and the like; never quotes a key."""
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        reason = "host key mismatch (not a key pinned in known_hosts)"
    elif isinstance(exc, asyncssh.PermissionDenied):
        reason = f"the key was refused for user {settings.user}"
    elif isinstance(exc, TimeoutError):
        reason = f"no answer within {settings.connect_timeout:g}s"
    elif isinstance(exc, asyncssh.ChannelOpenError):
        reason = f"the server refused a session ({exc.reason[:200]})"
    elif isinstance(exc, asyncssh.ConnectionLost):
        reason = "connection lost"
    elif isinstance(exc, OSError):
        # asyncio's strerror quotes the address; the errno's own words are enough.
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
    else:
        reason = type(exc).__name__
    return f"cannot reach {name} over SSH: {reason}"


async def _finish(
    link: _Link,
    conn: asyncssh.SSHClientConnection,
    process: asyncssh.SSHClientProcess[bytes],
    token: str,
    *,
    sudo: bool,
) -> Finished:
    """Feed the environment, read the capped output; kill the process group if the run is cut short."""
    pid: int | None = None
    ended = False
    try:
        process.stdin.write(env_lines(link.target))
        process.stdin.write_eof()
        pid = await _read_pid(process, token, link.name)
        tail, total, lines = await read_tail(process.stdout, link.target.max_output_bytes)
        await process.wait_closed()
        ended = process.returncode is not None
    except (asyncssh.Error, ConnectionError):
        # Whatever the command did, we cannot know how it ended.
        raise HostUnreachable(_LOST.format(name=link.name)) from None
    finally:
        if not ended:
            await _kill(conn, process, (pid, token), name=link.name, sudo=sudo)
        process.close()
    if process.returncode is None:
        raise HostUnreachable(_LOST.format(name=link.name))
    return Finished(exit_code=process.returncode, tail=tail, total_bytes=total, lines=lines)


async def _read_pid(process: asyncssh.SSHClientProcess[bytes], token: str, name: str) -> int:
    """The wrapper's PID, from its first line; the login shell's chatter before it is dropped."""
    marker = f"{token} ".encode()
    for _ in range(_CHATTER_LINES):
        line = await process.stdout.readline()
        if not line:
            break
        if line.startswith(marker) and line[len(marker) :].strip().isdigit():
            return int(line[len(marker) :])
    raise HostUnreachable(
        f"cannot run commands on {name} over SSH: the remote login shell did not start the wrapper"
    )


async def _kill(
    conn: asyncssh.SSHClientConnection,
    process: asyncssh.SSHClientProcess[bytes],
    started: tuple[int | None, str],
    *,
    name: str,
    sudo: bool,
) -> None:
    """Kill the command's process group on the remote host from a second session.

    Runs in a `finally`, possibly while the task is being cancelled: it is bounded, and a host
    that has gone away by now is not an error worth more than a log line.
    """
    pid, token = started
    if pid is None and not process.is_closing():
        # Cut short before the wrapper's first line arrived: it may still be on its way.
        with suppress(HostUnreachable, asyncssh.Error, OSError, TimeoutError):
            pid = await asyncio.wait_for(_read_pid(process, token, name), _PID_LINE_TIMEOUT_S)
    try:
        if pid is not None:
            await conn.run(kill_line(pid, sudo=sudo), check=False, timeout=_KILL_TIMEOUT_S)
        else:
            # No group to kill: ask sshd to signal the session (servers that support it do).
            process.kill()
    except (asyncssh.Error, OSError, TimeoutError) as exc:
        log.warning("ssh_kill_failed", target=name, pid=pid, error=type(exc).__name__)

"""Several `opsbot serve` processes behind Debian's HAProxy, for tests that kill replicas under load.

Owns the replica subprocesses (each on its own loopback port, all on one database and one Redis),
the generated HAProxy configuration and process, HAProxy's counters (read from its stats socket),
and the killer that SIGKILLs one replica at a time and starts it again on the same port.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import free_port

OPSBOT = str(Path(sys.executable).with_name("opsbot"))
BACKEND = "opsbots"
# What HAProxy may retry on another replica: a refused or reset connection and a replica that dies
# after reading the request are exactly what a SIGKILL produces.
HAPROXY_CONFIG = """\
global
    stats socket {stats} mode 600 level admin
    log stdout format raw local0

defaults
    mode http
    log global
    log-format "%ST %ts %rc %b/%s %HM %HU %Ta %tr"
    timeout connect 500ms
    timeout client 10s
    timeout server 2500ms
    timeout http-request 5s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout

frontend slack_in
    bind 127.0.0.1:{port}
    default_backend {backend}

backend {backend}
    balance roundrobin
    option httpchk GET /ready
    default-server inter 500ms fall 1 rise 1
{servers}
"""


def haproxy_binary() -> str:
    """Debian's haproxy, or a loud skip naming what is missing (as the browser test does for chromium)."""
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)), None
    )
    if found is None:
        pytest.skip("NOT TESTED: replicas behind a balancer need haproxy (`make system-packages`)")
    return found


@dataclass
class Replica:
    """One `opsbot serve` process; `start()` again after `kill()` reuses its port and log."""

    name: str
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([OPSBOT, "serve"], env=self.env, stdout=out, stderr=out)
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as with the OOM killer or a lost node."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                if self.proc is None or self.proc.poll() is not None:
                    raise AssertionError(f"{self.name} exited at start:\n{self.log_tail()}")
                try:
                    async with session.get(self.url + "/ready", timeout=aiohttp.ClientTimeout(2)) as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")
                await asyncio.sleep(0.1)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass(frozen=True)
class Kill:
    replica: str
    at: str  # wall clock, to read beside the logs
    back_after: float


@dataclass
class Cluster:
    """The replicas, HAProxy in front of them, and what the killer did."""

    replicas: list[Replica]
    front_url: str
    stats_socket: Path
    proxy_log: Path
    kills: list[Kill] = field(default_factory=list)

    async def restart(self, replica: Replica) -> Kill:
        at, killed_at = datetime.now(), time.monotonic()
        replica.kill()
        replica.start()
        await replica.wait_ready()
        return Kill(replica.name, f"{at:%H:%M:%S.%f}", time.monotonic() - killed_at)

    async def kill_in_turns(self, every: float, until: float, *, first_after: float) -> None:
        """SIGKILL the next replica (round robin) `first_after` seconds in, then every `every`
        seconds until `until`, each time starting it again on its port and waiting until it is ready."""
        due = time.monotonic() + first_after
        for turn in itertools.count():
            if due >= until:
                return
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            self.kills.append(await self.restart(self.replicas[turn % len(self.replicas)]))
            due += every

    def proxy_failures(self) -> list[str]:
        """HAProxy's log lines of requests not answered 2xx or not ended normally (termination `--`)."""
        lines = [line.split(" ", 2) for line in self.proxy_log.read_text(errors="replace").splitlines()]
        return [
            " ".join(fields)
            for fields in lines
            if len(fields) == 3 and fields[0][:1].isdigit() and (fields[0][0] != "2" or fields[1] != "--")
        ]

    def backend_stats(self) -> dict[str, dict[str, str]]:
        """HAProxy's `show stat` rows of our backend, by server name (`BACKEND` for the totals)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.stats_socket))
            sock.sendall(b"show stat\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        text = b"".join(chunks).decode().lstrip("# ")
        return {row["svname"]: row for row in csv.DictReader(io.StringIO(text)) if row["pxname"] == BACKEND}

    async def wait_all_up(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            stats = self.backend_stats()
            if all(stats.get(r.name, {}).get("status") == "UP" for r in self.replicas):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"HAProxy does not see every replica up: {stats}")
            await asyncio.sleep(0.1)


def replica_env(base: Mapping[str, str], data_dir: Path, port: int) -> dict[str, str]:
    """The test's bot settings over a clean copy of this process's environment, bound to loopback."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_", "REDIS_", "OPSBOT_"))
    }
    return {
        **inherited,
        **base,
        "OPSBOT_HOST": "127.0.0.1",
        "OPSBOT_PORT": str(port),
        "OPSBOT_DATA_DIR": str(data_dir),
        "OPSBOT_LOG_FORMAT": "json",
    }


def _stop_all(replicas: list[Replica]) -> None:
    """SIGTERM to every replica at once, then wait for each (a clean stop takes seconds)."""
    running = [r for r in replicas if r.proc is not None and r.proc.poll() is None]
    for replica in running:
        assert replica.proc is not None
        replica.proc.send_signal(signal.SIGTERM)
    for replica in running:
        replica.stop()


async def _start_haproxy(stack: AsyncExitStack, workdir: Path, replicas: list[Replica]) -> Cluster:
    port = free_port()
    stats = workdir / "haproxy.sock"
    servers = "\n".join(f"    server {r.name} 127.0.0.1:{r.port} check" for r in replicas)
    config = workdir / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(stats=stats, port=port, backend=BACKEND, servers=servers))
    binary = haproxy_binary()
    check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    with (workdir / "haproxy.log").open("ab") as out:
        proc = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=out, stderr=out)

    def stop() -> None:
        proc.terminate()
        proc.wait(10)

    stack.callback(stop)
    cluster = Cluster(replicas, f"http://127.0.0.1:{port}", stats, workdir / "haproxy.log")
    deadline = time.monotonic() + 10
    while not stats.exists():
        assert proc.poll() is None and time.monotonic() < deadline, cluster.proxy_log.read_text()
        await asyncio.sleep(0.05)
    await cluster.wait_all_up()
    return cluster


@asynccontextmanager
async def running_cluster(
    env: Mapping[str, str], workdir: Path, *, replicas: int = 3
) -> AsyncIterator[Cluster]:
    """`replicas` bots and HAProxy; the first bot alone runs the migrations, then the others start."""
    haproxy_binary()
    async with AsyncExitStack() as stack:
        members = []
        for n in range(replicas):
            data_dir = workdir / f"r{n}"
            data_dir.mkdir(parents=True, exist_ok=True)
            port = free_port()
            members.append(Replica(f"r{n}", port, replica_env(env, data_dir, port), data_dir / "opsbot.log"))
        stack.callback(_stop_all, members)
        members[0].start()
        await members[0].wait_ready()
        for member in members[1:]:
            member.start()
        await asyncio.gather(*(m.wait_ready() for m in members[1:]))
        yield await _start_haproxy(stack, workdir, members)

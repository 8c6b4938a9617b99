"""The apps under test run as child processes: their RSS is theirs alone and they have their own
event loop. Every child is stopped on every way out, and dies with the benchmark if it is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil

_PR_SET_PDEATHSIG = 1
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # Linux only: a benchmark killed with SIGKILL must not leave a server running.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class AppProcess:
    name: str
    proc: asyncio.subprocess.Process
    url: str
    log_path: Path
    _ps: psutil.Process = field(init=False)
    peak_rss: int = 0

    def __post_init__(self) -> None:
        self._ps = psutil.Process(self.proc.pid)

    def rss(self) -> int:
        value = int(self._ps.memory_info().rss)
        self.peak_rss = max(self.peak_rss, value)
        return value

    def cpu_seconds(self) -> float:
        times = self._ps.cpu_times()
        return float(times.user + times.system)

    def reset_peak(self) -> None:
        self.peak_rss = 0
        self.rss()

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


async def _wait_healthy(app: AppProcess, timeout: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(trust_env=False) as session:
        while time.monotonic() < deadline:
            if not app.alive:
                raise RuntimeError(f"{app.name} exited with {app.proc.returncode}:\n{app.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(app.url + "/health") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{app.name} not healthy after {timeout:g}s:\n{app.log_tail()}")


async def _stop(app: AppProcess, stop_s: float) -> None:
    if not app.alive:
        return
    app.proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(app.proc.wait(), stop_s)
    except TimeoutError:
        app.proc.kill()
        await app.proc.wait()


@asynccontextmanager
async def running_app(
    name: str,
    argv: list[str],
    env: Mapping[str, str],
    *,
    workdir: Path,
    startup_s: float = 60.0,
    stop_s: float = 15.0,
) -> AsyncIterator[AppProcess]:
    """Starts `argv` on a free loopback port (OPSBOT_PORT) and yields once /health answers; on the
    way out, SIGTERM and `stop_s` seconds to exit (a profiler writes its report then) before SIGKILL."""
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if k not in _PROXIES}
    child_env.update(env)
    child_env["OPSBOT_PORT"] = str(port)
    child_env["OPSBOT_HOST"] = "127.0.0.1"
    log_path = workdir / f"{name}.log"
    with log_path.open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=child_env,
            cwd=workdir,  # no developer's .env is picked up from the checkout
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            preexec_fn=_die_with_parent,
        )
    app = AppProcess(name=name, proc=proc, url=f"http://127.0.0.1:{port}", log_path=log_path)
    try:
        await _wait_healthy(app, startup_s)
        yield app
    finally:
        await _stop(app, stop_s)


def opsbot_argv() -> list[str]:
    return [str(Path(sys.executable).with_name("opsbot")), "serve"]


def bare_bolt_argv() -> list[str]:
    return [sys.executable, "-m", "bench.bare_bolt"]


class RssSampler:
    """Samples the RSS of the apps every `interval` seconds, keeping each one's peak."""

    def __init__(self, apps: list[AppProcess], interval: float = 0.25) -> None:
        self._apps = apps
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            for app in self._apps:
                if app.alive:
                    with contextlib.suppress(psutil.Error):
                        app.rss()
            await asyncio.sleep(self._interval)

    async def __aenter__(self) -> RssSampler:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

"""Fixtures for the probe suite: real servers to probe, and runners that are always closed.

Besides the shared PostgreSQL and Redis, probes meet a fresh `redis-server` (so INFO counters
start at zero), throwaway aiohttp servers, and a TCP server that accepts connections and never
says a word — the target every timeout has to survive.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis
from aiohttp import web

from bot.probes import ProbeRunner
from bot.targets import Targets
from tests.conftest import free_port


def make_targets(**entries: dict[str, Any]) -> Targets:
    """A registry from keyword arguments: `make_targets(app_db={"kind": "postgres", ...})`."""
    return Targets.parse({"targets": entries}, source="test")


@pytest.fixture
async def runner_for() -> AsyncIterator[Callable[[Targets], ProbeRunner]]:
    """Build runners inside a test; every one is closed when the test ends."""
    runners: list[ProbeRunner] = []

    def build(targets: Targets) -> ProbeRunner:
        runner = ProbeRunner(targets)
        runners.append(runner)
        return runner

    yield build
    for runner in runners:
        await runner.close()


def _start_redis(*extra: str) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server binary not found: install redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *extra],
        stdout=subprocess.DEVNULL,
    )
    password = extra[extra.index("--requirepass") + 1] if "--requirepass" in extra else None
    client = redis.Redis(port=port, password=password, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.RedisError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("fresh redis-server did not start")
            time.sleep(0.02)
    client.close()
    return proc, port


@pytest.fixture
def fresh_redis() -> Iterator[int]:
    """A private redis-server on a free port, counters at zero; yields the port."""
    proc, port = _start_redis()
    yield port
    proc.terminate()
    proc.wait(5)


@pytest.fixture
def redis_with_password() -> Iterator[tuple[int, str]]:
    password = "pr0be-s3cret-pw"
    proc, port = _start_redis("--requirepass", password)
    yield port, password
    proc.terminate()
    proc.wait(5)


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never answers or closes them."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port
    server.close()
    for writer in held:
        writer.close()
    await server.wait_closed()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[web.Application], Any]]:
    """Serve an aiohttp application on a free loopback port: `base_url = await serve(app)`."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        app_runner = web.AppRunner(app, shutdown_timeout=0.1)
        await app_runner.setup()
        port = free_port()
        await web.TCPSite(app_runner, "127.0.0.1", port).start()
        runners.append(app_runner)
        return f"http://127.0.0.1:{port}"

    yield start
    for app_runner in runners:
        await app_runner.cleanup()

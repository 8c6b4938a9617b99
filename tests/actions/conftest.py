"""Fixtures for the action suite: executors that are always closed, and servers actions may change.

State-changing Redis commands (FLUSHDB, CONFIG SET) only ever meet a private `redis-server`
started for the test, never the shared one. HTTP actions meet throwaway aiohttp servers and a TCP
server that accepts connections and never answers.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import redis
from aiohttp import web

from bot.actions import ActionExecutor
from bot.targets import Targets
from tests.conftest import free_port

Executors = Callable[[Targets], ActionExecutor]
Serve = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def executor_for() -> AsyncIterator[Executors]:
    """Build executors inside a test; every one is closed when the test ends."""
    executors: list[ActionExecutor] = []

    def build(targets: Targets) -> ActionExecutor:
        executor = ActionExecutor(targets)
        executors.append(executor)
        return executor

    yield build
    for executor in executors:
        await executor.close()


@pytest.fixture
def private_redis() -> Iterator[int]:
    """A redis-server of this test's own on a free port, nothing persisted; yields the port."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.RedisError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("private redis-server did not start")
            time.sleep(0.02)
    client.close()
    yield port
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
async def serve() -> AsyncIterator[Serve]:
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

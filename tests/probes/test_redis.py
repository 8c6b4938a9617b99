"""Redis probes against real servers: allow-listed commands, derived figures, short errors."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from pydantic import ValidationError

from bot.probes import ProbeRunner, RedisProbe
from bot.targets import Targets
from tests.conftest import free_port
from tests.probes.conftest import make_targets

Runners = Callable[[Targets], ProbeRunner]


@pytest.fixture
def direct(fresh_redis: int) -> Iterator[redis.Redis]:
    client = redis.Redis(port=fresh_redis)
    yield client
    client.close()


@pytest.fixture
def runner(fresh_redis: int, runner_for: Runners) -> ProbeRunner:
    return runner_for(make_targets(cache={"kind": "redis", "url": f"redis://127.0.0.1:{fresh_redis}/0"}))


def probe(command: str, **extra: object) -> RedisProbe:
    return RedisProbe.model_validate({"target": "cache", "command": command, **extra})


async def test_hit_rate_is_hits_over_lookups(runner: ProbeRunner, direct: redis.Redis) -> None:
    before = await runner.run(probe("INFO", section="stats"), {}, run_id="r", timeout_s=2)
    assert before.status == "ok", before.error
    assert before.values["hit_rate"] is None  # no lookups yet: unknown, not 0%
    for i in range(3):
        direct.set(f"k{i}", "v")
        assert direct.get(f"k{i}") == b"v"
    for i in range(7):
        assert direct.get(f"missing{i}") is None
    result = await runner.run(probe("info", section="STATS"), {}, run_id="r", timeout_s=2)
    assert result.values["keyspace_hits"] == 3
    assert result.values["keyspace_misses"] == 7
    assert result.values["hit_rate"] == 30.0
    assert isinstance(result.values["hit_rate"], float)
    assert result.values["hit_rate"] < 60
    assert result.values["evicted_keys"] == 0
    assert result.values["rejected_connections"] == 0
    assert "ops_per_sec" in result.values
    assert ["keyspace_hits", 3] in result.rows


async def test_memory_use_against_maxmemory(runner: ProbeRunner, direct: redis.Redis) -> None:
    direct.config_set("maxmemory", 100 * 1024 * 1024)
    result = await runner.run(probe("INFO", section="memory"), {}, run_id="m", timeout_s=2)
    values = result.values
    assert values["maxmemory_mb"] == 100.0
    used = direct.info("memory")["used_memory"]
    assert values["used_memory_mb"] == pytest.approx(used / 1048576, abs=0.5)
    assert isinstance(values["memory_used_pct"], float)
    assert 0 < values["memory_used_pct"] < 100
    direct.config_set("maxmemory", 0)
    unlimited = await runner.run(probe("INFO", section="memory"), {}, run_id="m", timeout_s=2)
    assert unlimited.values["maxmemory_mb"] == 0
    assert unlimited.values["memory_used_pct"] is None


async def test_info_clients_and_keyspace(runner: ProbeRunner, direct: redis.Redis) -> None:
    direct.mset({"a": 1, "b": 2})
    clients = await runner.run(probe("INFO", section="clients"), {}, run_id="c", timeout_s=2)
    assert isinstance(clients.values["connected_clients"], int)
    assert clients.values["connected_clients"] >= 2
    keyspace = await runner.run(probe("INFO", section="keyspace"), {}, run_id="c", timeout_s=2)
    assert keyspace.values["db0_keys"] == 2


async def test_dbsize_ping_and_config_get(runner: ProbeRunner, direct: redis.Redis) -> None:
    prefix = uuid.uuid4().hex
    direct.mset({f"{prefix}:{i}": i for i in range(5)})
    assert (await runner.run(probe("DBSIZE"), {}, run_id="d", timeout_s=2)).values["keys"] == 5
    ping = await runner.run(probe("PING"), {}, run_id="d", timeout_s=2)
    assert ping.values["pong"] is True
    assert isinstance(ping.values["latency_ms"], float)
    policy = await runner.run(probe("CONFIG GET", pattern="maxmemory-policy"), {}, run_id="d", timeout_s=2)
    assert policy.values["maxmemory_policy"] == "noeviction"
    direct.config_set("maxmemory-policy", "allkeys-lru")
    changed = await runner.run(probe("CONFIG GET", pattern="maxmemory-policy"), {}, run_id="d", timeout_s=2)
    assert changed.rows == [["maxmemory-policy", "allkeys-lru"]]
    limit = await runner.run(probe("CONFIG GET", pattern="maxmemory"), {}, run_id="d", timeout_s=2)
    assert limit.values["maxmemory"] == 0


async def test_slowlog_rows_are_capped_and_commands_shortened(
    runner: ProbeRunner, direct: redis.Redis
) -> None:
    direct.config_set("slowlog-log-slower-than", 0)
    direct.mset({f"long{i}": "x" * 100 for i in range(5)})
    for i in range(10):
        direct.get(f"key{i}")
    spec = probe("SLOWLOG GET", count="{n}")
    assert spec.param_names() == {"n"}
    result = await runner.run(spec, {"n": 5}, run_id="s", timeout_s=2)
    assert result.status == "ok", result.error
    assert result.values["slow_count"] == 5
    assert len(result.rows) == 5
    assert result.columns == ["id", "started", "duration_ms", "command", "client"]
    everything = await runner.run(probe("SLOWLOG GET", count=128), {}, run_id="s", timeout_s=2)
    commands = [row[3] for row in everything.rows]
    long_set = next(command for command in commands if command.startswith("MSET long"))
    assert len(long_set) == 200
    assert long_set.endswith("…")
    assert all(isinstance(row[2], float) for row in everything.rows)
    refused = await runner.run(spec, {"n": 1000}, run_id="s", timeout_s=2)
    assert refused.status == "error"
    assert "between 1 and 128" in (refused.error or "")


async def test_client_list_counts_idle_clients(runner: ProbeRunner, direct: redis.Redis) -> None:
    direct.client_setname("watcher")
    result = await runner.run(probe("CLIENT LIST"), {}, run_id="cl", timeout_s=2)
    assert isinstance(result.values["clients"], int)
    assert result.values["clients"] >= 2
    assert result.values["idle_clients_over_300s"] == 0
    names = [row[result.columns.index("name")] for row in result.rows]
    assert "watcher" in names
    assert "opsbot" in names


async def test_memory_stats(runner: ProbeRunner) -> None:
    result = await runner.run(probe("MEMORY STATS"), {}, run_id="ms", timeout_s=2)
    assert isinstance(result.values["total_allocated"], int)
    assert result.values["total_allocated"] > 0
    assert result.columns == ["name", "value"]


async def test_password_protected_server(redis_with_password: tuple[int, str], runner_for: Runners) -> None:
    port, password = redis_with_password
    good = runner_for(make_targets(cache={"kind": "redis", "url": f"redis://:{password}@127.0.0.1:{port}/0"}))
    assert (await good.run(probe("PING"), {}, run_id="p", timeout_s=2)).status == "ok"
    wrong = runner_for(
        make_targets(cache={"kind": "redis", "url": f"redis://:wrong-pw-123@127.0.0.1:{port}/0"})
    )
    result = await wrong.run(probe("PING"), {}, run_id="p", timeout_s=2)
    assert result.status == "error"
    assert result.error
    assert "wrong-pw-123" not in result.error


async def test_refused_and_silent_servers(silent_port: int, runner_for: Runners) -> None:
    refused = runner_for(make_targets(cache={"kind": "redis", "url": f"redis://127.0.0.1:{free_port()}/0"}))
    result = await refused.run(probe("PING"), {}, run_id="x", timeout_s=2)
    assert result.status == "error"
    assert result.error == "cannot connect: Connection refused"
    silent = runner_for(make_targets(cache={"kind": "redis", "url": f"redis://127.0.0.1:{silent_port}/0"}))
    started = time.monotonic()
    hung = await silent.run(probe("PING"), {}, run_id="x", timeout_s=0.5)
    assert hung.status == "timeout"
    assert hung.error == "timed out after 0.5s"
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"command": "FLUSHALL"}, "Input should be 'PING'"),
        ({"command": "CONFIG SET"}, "Input should be 'PING'"),
        ({"command": "INFO", "section": "commandstats"}, "Input should be 'server'"),
        ({"command": "CONFIG GET", "pattern": "requirepass"}, "Input should be 'maxmemory'"),
        ({"command": "CONFIG GET", "pattern": "*"}, "Input should be 'maxmemory'"),
        ({"command": "CONFIG GET"}, "CONFIG GET needs a pattern"),
        ({"command": "PING", "section": "memory"}, "section is only for INFO"),
        ({"command": "SLOWLOG GET", "count": 0}, "between 1 and 128"),
        ({"command": "SLOWLOG GET", "count": 129}, "between 1 and 128"),
        ({"command": "SLOWLOG GET", "count": "{n} 1"}, "mixes text and a placeholder"),
        ({"command": "DBSIZE", "count": 5}, "count is only for SLOWLOG GET"),
    ],
)
def test_anything_off_the_allow_list_is_refused_at_validation(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RedisProbe.model_validate({"target": "cache", **spec})

"""Each sickness the demo can cause shows up in the runbook written for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.demo import SickSystem
from bot.probes import ProbeRunner
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.engine import diagnose, judge
from bot.runbooks.params import bind_params
from bot.runbooks.steps import HttpCall
from bot.targets import Targets
from tests.conftest import free_port


async def test_fifty_idle_connections_make_db_connections_crit(
    catalogue: Catalogue, db_system: SickSystem, db_runner: ProbeRunner
) -> None:
    runbook = catalogue.get("db.connections")
    assert runbook is not None
    await db_system.leak_connections(50)
    diagnosis = await diagnose(runbook, bind_params(runbook.params, [], None), db_runner)
    assert diagnosis.overall == "crit"
    idle = diagnosis.outcome("idle")
    assert idle is not None
    assert idle.status == "crit"
    assert isinstance(idle.value, int) and idle.value >= 50
    total = diagnosis.outcome("total")
    assert total is not None
    assert total.status in ("warn", "crit"), "50 leaked plus the app's own pass the leak alert (> 50)"
    await db_system.close_leaked_connections()
    # Backends leave pg_stat_activity a moment after their client closes; give them that moment.
    for _ in range(50):
        after = await diagnose(runbook, bind_params(runbook.params, [], None), db_runner)
        if after.overall == "ok":
            break
        await asyncio.sleep(0.1)
    assert after.outcome("idle") is not None
    assert after.outcome("idle").status == "ok"  # type: ignore[union-attr]
    assert after.outcome("total").status == "ok"  # type: ignore[union-attr]


async def test_low_hit_rate_is_reported_by_cache_stats(
    catalogue: Catalogue, database_url: str, fresh_redis_url: str, tmp_path: Path
) -> None:
    runbook = catalogue.get("cache.stats")
    assert runbook is not None
    async with SickSystem.running(
        postgres_dsn=database_url, redis_url=fresh_redis_url, workdir=tmp_path / "demo"
    ) as system:
        await system.lower_hit_rate(hits=40, misses=160)
        async with ProbeRunner(system.load_targets()) as runner:
            diagnosis = await diagnose(runbook, {}, runner)
    hit_rate = diagnosis.outcome("hit_rate")
    assert hit_rate is not None
    assert hit_rate.value == 20.0
    assert hit_rate.status == "crit"
    assert any(s.ref == "cache.optimize" for s in diagnosis.suggestions)


async def test_health_503_is_red_and_recovery_is_green(
    catalogue: Catalogue, sick_system: SickSystem, runner: ProbeRunner
) -> None:
    runbook = catalogue.get("health.services")
    assert runbook is not None
    params = bind_params(runbook.params, [], runbook.command.positional if runbook.command else None)
    sick = await diagnose(runbook, params, runner)
    health = sick.outcome("health")
    assert health is not None and health.status == "crit"
    assert health.result.values["status_code"] == 503
    assert sick.overall == "crit"
    sick_system.make_healthy()
    healthy = await diagnose(runbook, params, runner)
    assert [o.check_id for o in healthy.checks if o.status != "ok"] == []


async def test_slow_query_shows_in_slow_queries(
    catalogue: Catalogue, db_system: SickSystem, db_runner: ProbeRunner
) -> None:
    runbook = catalogue.get("db.slow-queries")
    assert runbook is not None
    pid = await db_system.start_slow_query(60)
    await asyncio.sleep(1.2)
    diagnosis = await diagnose(runbook, bind_params(runbook.params, [], None), db_runner)
    running = diagnosis.outcome("running_slow")
    longest = diagnosis.outcome("longest")
    assert running is not None and running.status in ("warn", "crit") and running.value == 1
    assert longest is not None and longest.result.rows[0][0] == pid


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", free_port())
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_hanging_api_is_a_timeout_within_the_check_limit(
    catalogue: Catalogue, silent_port: int
) -> None:
    runbook = catalogue.get("health.services")
    assert runbook is not None
    check = runbook.check("health")
    assert check is not None
    check = check.model_copy(update={"timeout_s": 1.0})
    targets = Targets.parse(
        {"targets": {"api": {"kind": "http", "base_url": f"http://127.0.0.1:{silent_port}"}}}
    )
    async with ProbeRunner(targets) as runner:
        result = await runner.run(check.probe, {}, run_id="run-hang", timeout_s=check.timeout_s)
    assert result.status == "timeout"
    assert result.latency_ms < (check.timeout_s + 0.5) * 1000
    assert judge(check, result).status == "unknown"


async def test_admin_endpoints_accept_what_the_actions_send(
    catalogue: Catalogue, sick_system: SickSystem
) -> None:
    runbook = catalogue.get("api.rate-limit")
    assert runbook is not None
    action = runbook.action("raise_limit")
    assert action is not None and isinstance(action.step, HttpCall)
    values = bind_params(action.params, ["limit_per_minute=10"], None)
    body = {key: values.get(str(raw).strip("{}"), raw) for key, raw in action.step.json_body.items()}
    async with aiohttp.ClientSession() as session:
        url = sick_system.urls["api"] + action.step.path
        async with session.post(url, json=body) as response:
            assert response.status in action.step.expect_status
        async with session.get(url) as response:
            assert (await response.json()) == {"limit_per_minute": 10}
    assert sick_system.api_state.admin_calls[-1].body == {"limit_per_minute": 10}


async def test_host_stand_ins_record_what_ran(sick_system: SickSystem, runner: ProbeRunner) -> None:
    from bot.probes.command import CommandProbe

    probe = CommandProbe(target="host", argv=["systemctl", "is-active", "swipesavvy-backend"])
    result = await runner.run(probe, {}, run_id="run-host", timeout_s=5)
    assert result.status == "ok" and result.values["last_line"] == "active"
    assert sick_system.host.calls()[-1] == "systemctl is-active swipesavvy-backend"

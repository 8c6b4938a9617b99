"""The diagnosis engine against real servers: thresholds, concurrency, deadlines, coalescing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from bot.coordination import MemoryCoordinator, RedisCoordinator
from bot.probes import ProbeResult, ProbeRunner
from bot.runbooks.engine import diagnose, judge
from bot.runbooks.model import Check, Runbook
from bot.services.diagnoses import DiagnosisService
from bot.targets import Targets


def runbook(checks: list[dict[str, Any]], **extra: Any) -> Runbook:
    return Runbook.model_validate(
        {
            "id": "test.engine",
            "title": "Engine test",
            "summary": "checks for the engine tests",
            "source": {"seed": "000_e2e647c03db5623f.txt", "section": "Database Connection Pool Leaks"},
            "checks": checks,
            **extra,
        }
    )


def pg_check(check_id: str, sql: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": check_id,
        "title": f"check {check_id}",
        "probe": {"kind": "postgres", "target": "app_db", "sql": sql},
        **extra,
    }


@contextlib.asynccontextmanager
async def black_hole() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.fixture
async def runner(app_db_url: str) -> AsyncIterator[ProbeRunner]:
    targets = Targets.parse({"targets": {"app_db": {"kind": "postgres", "dsn": app_db_url}}})
    async with ProbeRunner(targets) as probe_runner:
        yield probe_runner


def result(status: str = "ok", **values: Any) -> ProbeResult:
    return ProbeResult(status=status, values=values, latency_ms=1.0, error=None if status == "ok" else "boom")  # type: ignore[arg-type]


def test_thresholds_judge_ok_warn_crit_and_unknown() -> None:
    check = Check.model_validate(
        pg_check(
            "c", "SELECT 1 AS n", value="n", warn={"op": ">", "value": 10}, crit={"op": ">=", "value": 20}
        )
    )
    assert judge(check, result(n=3)).status == "ok"
    assert judge(check, result(n=11)).status == "warn"
    assert judge(check, result(n=20)).status == "crit"
    assert judge(check, result(n="12")).status == "warn", "numeric text is a number"
    timed_out = judge(check, result("timeout"))
    assert (timed_out.status, timed_out.reason) == ("unknown", "boom")
    assert judge(check, result("error")).status == "unknown"
    missing = judge(check, result(other=1))
    assert (missing.status, missing.reason) == ("unknown", "the probe returned no value named n")
    absent = judge(check, result(n=None))
    assert (absent.status, absent.reason) == ("unknown", "no value")
    text = judge(check, result(n="not a number"))
    assert (text.status, text.reason) == ("unknown", "not a number: 'not a number'")


async def test_checks_run_concurrently_and_report_values(runner: ProbeRunner) -> None:
    book = runbook(
        [
            pg_check(f"s{i}", "SELECT pg_sleep(0.4), 7 AS n", value="n", warn={"op": ">", "value": 5})
            for i in range(4)
        ]
    )
    diagnosis = await diagnose(book, {}, runner)
    assert [c.status for c in diagnosis.checks] == ["warn"] * 4
    assert diagnosis.overall == "warn"
    # Four 0.4 s checks one after another would need 1.6 s; together they need about 0.4 s.
    assert diagnosis.duration_ms < 1400


async def test_a_black_holed_target_costs_its_timeout_and_other_checks_still_report(app_db_url: str) -> None:
    async with black_hole() as port:
        targets = Targets.parse(
            {
                "targets": {
                    "app_db": {"kind": "postgres", "dsn": app_db_url},
                    "api": {"kind": "http", "base_url": f"http://127.0.0.1:{port}"},
                }
            }
        )
        book = runbook(
            [
                pg_check("db", "SELECT 1 AS n", value="n"),
                {
                    "id": "hang",
                    "title": "hanging api",
                    "timeout_s": 0.5,
                    "probe": {"kind": "http", "target": "api", "path": "/health"},
                },
            ]
        )
        async with ProbeRunner(targets) as probe_runner:
            diagnosis = await diagnose(book, {}, probe_runner)
    db, hang = diagnosis.checks
    assert db.status == "ok"
    assert hang.status == "unknown"
    assert hang.result.status == "timeout"
    assert "timed out after 0.5s" in hang.reason
    assert diagnosis.overall == "unknown"
    assert diagnosis.duration_ms < 1500


async def test_the_runbook_deadline_cuts_off_a_slow_check(runner: ProbeRunner) -> None:
    book = runbook(
        [pg_check("slow", "SELECT pg_sleep(5) AS n", timeout_s=10), pg_check("fast", "SELECT 1 AS n")],
        deadline_s=0.5,
    )
    diagnosis = await diagnose(book, {}, runner)
    slow, fast = diagnosis.checks
    assert fast.status == "ok"
    assert slow.status == "unknown"
    assert "runbook deadline" in slow.reason


async def test_suggestions_follow_check_outcomes(runner: ProbeRunner) -> None:
    checks = [pg_check("n", "SELECT 3 AS n", value="n", warn={"op": ">", "value": 2})]
    book = runbook(
        checks,
        next=[
            {
                "when": {"check": "n", "status": ["warn", "crit"]},
                "suggest": ["runbook:db.connections"],
                "note": "look",
            },
            {"when": {"check": "n", "status": ["ok"]}, "suggest": ["runbook:db.locks"]},
        ],
    )
    diagnosis = await diagnose(book, {}, runner)
    assert [(s.kind, s.ref, s.note) for s in diagnosis.suggestions] == [("runbook", "db.connections", "look")]


async def test_identical_diagnoses_at_once_run_once(runner: ProbeRunner, app_db_url: str) -> None:
    book = runbook([pg_check("n", "SELECT pg_sleep(0.3), 1 AS n", value="n")])
    service = DiagnosisService(runner, MemoryCoordinator(), None)
    results = await asyncio.gather(*(service.run(book, {}) for _ in range(10)))
    assert len({d.run_id for d, _ in results}) == 1
    assert sorted(shared for _, shared in results) == [False] + [True] * 9
    different, shared = await service.run(book.model_copy(update={"version": 2}), {})
    assert not shared
    assert different.run_id != results[0][0].run_id


async def test_replicas_share_a_diagnosis_through_redis(app_db_url: str, redis_url: str) -> None:
    import uuid

    prefix = f"opsbot-test-{uuid.uuid4().hex}:"
    targets = Targets.parse({"targets": {"app_db": {"kind": "postgres", "dsn": app_db_url}}})
    book = runbook([pg_check("n", "SELECT pg_sleep(0.3), 1 AS n", value="n")])
    coordinators = [RedisCoordinator(redis_url, prefix=prefix) for _ in range(2)]
    async with ProbeRunner(targets) as first, ProbeRunner(targets) as second:
        replicas = [
            DiagnosisService(first, coordinators[0], None),
            DiagnosisService(second, coordinators[1], None),
        ]
        (a, a_shared), (b, b_shared) = await asyncio.gather(*(r.run(book, {}) for r in replicas))
    for coordinator in coordinators:
        await coordinator.close()
    assert a.run_id == b.run_id
    assert sorted([a_shared, b_shared]) == [False, True]


async def test_fifty_idle_connections_make_db_connections_critical(app_db_url: str) -> None:
    from pathlib import Path

    from bot.runbooks.catalogue import load_catalogue

    catalogue = load_catalogue(Path(__file__).parents[2] / "runbooks")
    book = catalogue.runbooks["db.connections"]
    idle = [await psycopg.AsyncConnection.connect(app_db_url) for _ in range(50)]
    try:
        targets = Targets.parse({"targets": {"app_db": {"kind": "postgres", "dsn": app_db_url}}})
        async with ProbeRunner(targets) as probe_runner:
            diagnosis = await diagnose(book, {"idle_minutes": 30}, probe_runner)
    finally:
        for conn in idle:
            await conn.close()
    assert diagnosis.overall == "crit"
    idle_check = diagnosis.outcome("idle")
    assert idle_check is not None and idle_check.status == "crit"
    assert idle_check.value is not None and idle_check.value >= 50
    total = diagnosis.outcome("total")
    assert (
        total is not None
        and total.status in ("warn", "crit")
        and total.threshold == "warning if > 50 connections · critical if > 55 connections"
    )
    assert [s.ref for s in diagnosis.suggestions] == ["terminate_idle"]

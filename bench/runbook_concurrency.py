"""Benchmark: a runbook of 8 checks across PostgreSQL, Redis and HTTP runs them concurrently.

Targets (issue "Runbook engine"): the whole diagnosis takes at most 1.2 times its slowest check, and
with one black-holed target it finishes within that check's timeout + 100 ms. The slowest check
is measured alone in the same run, so the ratio does not depend on this machine's speed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import psycopg
from aiohttp import web

from bench.common import black_hole, machine_postgres, machine_redis, median, print_table, save
from bot.logs import configure_logging
from bot.probes import ProbeRunner
from bot.runbooks.engine import diagnose
from bot.runbooks.model import Runbook
from bot.targets import Targets

ROUNDS = 15
BLACK_HOLE_TIMEOUT = 1.0


async def slow_app() -> tuple[web.AppRunner, int]:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(int(request.query.get("ms", "0")) / 1000)
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


def eight_checks() -> list[dict[str, Any]]:
    pg = [(f"pg{i}", f"SELECT pg_sleep({s}), {i} AS n") for i, s in enumerate((0.10, 0.20, 0.30))]
    checks: list[dict[str, Any]] = [
        {"id": cid, "title": cid, "probe": {"kind": "postgres", "target": "app_db", "sql": sql}}
        for cid, sql in pg
    ]
    checks += [
        {"id": "ping", "title": "ping", "probe": {"kind": "redis", "target": "cache", "command": "PING"}},
        {
            "id": "info",
            "title": "info",
            "probe": {"kind": "redis", "target": "cache", "command": "INFO", "section": "stats"},
        },
        {
            "id": "dbsize",
            "title": "dbsize",
            "probe": {"kind": "redis", "target": "cache", "command": "DBSIZE"},
        },
    ]
    checks += [
        {
            "id": f"http{ms}",
            "title": f"http{ms}",
            "probe": {"kind": "http", "target": "api", "path": "/slow", "query": {"ms": str(ms)}},
        }
        for ms in (150, 250)
    ]
    return checks


def runbook(checks: list[dict[str, Any]]) -> Runbook:
    return Runbook.model_validate(
        {
            "id": "bench.eight",
            "title": "Eight checks",
            "summary": "benchmark runbook",
            "source": {"seed": "004_64a8611e63a2df9d.txt", "section": "Performance Diagnosis"},
            "checks": checks,
            "deadline_s": 30,
        }
    )


async def main() -> dict[str, Any]:
    admin = machine_postgres()
    name = f"opsbot_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    app_runner, port = await slow_app()
    try:
        async with black_hole() as hole:
            targets = Targets.parse(
                {
                    "targets": {
                        "app_db": {"kind": "postgres", "dsn": admin.rsplit("/", 1)[0] + "/" + name},
                        "cache": {"kind": "redis", "url": machine_redis()},
                        "api": {"kind": "http", "base_url": f"http://127.0.0.1:{port}"},
                        "hole": {"kind": "http", "base_url": f"http://127.0.0.1:{hole}"},
                    }
                }
            )
            checks = eight_checks()
            async with ProbeRunner(targets) as runner:
                await diagnose(runbook(checks), {}, runner)  # warm pools and connections
                alone: dict[str, list[float]] = {c["id"]: [] for c in checks}
                together: list[float] = []
                holed: list[float] = []
                with_hole = [
                    *checks[:-1],
                    {
                        "id": "hole",
                        "title": "hole",
                        "timeout_s": BLACK_HOLE_TIMEOUT,
                        "probe": {"kind": "http", "target": "hole", "path": "/health"},
                    },
                ]
                for _ in range(ROUNDS):
                    for check in checks:
                        started = time.perf_counter()
                        await diagnose(runbook([check]), {}, runner)
                        alone[check["id"]].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    diagnosis = await diagnose(runbook(checks), {}, runner)
                    together.append(time.perf_counter() - started)
                    assert all(c.status == "ok" for c in diagnosis.checks), diagnosis.checks
                    started = time.perf_counter()
                    diagnosis = await diagnose(runbook(with_hole), {}, runner)
                    holed.append(time.perf_counter() - started)
                    hole_outcome = diagnosis.outcome("hole")
                    assert hole_outcome is not None
                    assert hole_outcome.status == "error"
    finally:
        await app_runner.cleanup()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    slowest_id = max(alone, key=lambda k: median(alone[k]))
    slowest = median(alone[slowest_id])
    sequential = sum(median(v) for v in alone.values())
    figures = {
        "rounds": ROUNDS,
        "slowest_check": slowest_id,
        "slowest_check_s": slowest,
        "sum_of_checks_s": sequential,
        "diagnosis_median_s": median(together),
        "diagnosis_max_s": max(together),
        "ratio_to_slowest": median(together) / slowest,
        "ratio_target": 1.2,
        "black_hole_timeout_s": BLACK_HOLE_TIMEOUT,
        "black_hole_diagnosis_median_s": median(holed),
        "black_hole_diagnosis_max_s": max(holed),
        "black_hole_overrun_ms": (max(holed) - BLACK_HOLE_TIMEOUT) * 1000,
        "black_hole_target_overrun_ms": 100,
    }
    print_table(
        f"Runbook of 8 checks (3 PostgreSQL, 3 Redis, 2 HTTP), median of {ROUNDS} rounds",
        ["measure", "seconds", "vs target"],
        [
            [f"slowest check alone ({slowest_id})", slowest, ""],
            ["all 8 checks one after another (sum)", sequential, ""],
            [
                "diagnosis, 8 checks concurrently",
                median(together),
                f"{figures['ratio_to_slowest']:.2f}× slowest (target ≤ 1.20×)",
            ],
            [
                f"diagnosis with a black-holed check (timeout {BLACK_HOLE_TIMEOUT:g}s), worst",
                max(holed),
                f"+{figures['black_hole_overrun_ms']:.0f} ms over the timeout (target ≤ 100 ms)",
            ],
        ],
    )
    print(f"results: {save('runbook_concurrency', figures)}")
    return figures


if __name__ == "__main__":
    configure_logging("warning", "console")
    asyncio.run(main())

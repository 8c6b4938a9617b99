"""The db runbooks on both PostgreSQL servers they meet: the machine's and the embedded one of `make demo`.

`db_system` / `db_runner` run each test once per server. The embedded build has no libxml and
neither server preloads pg_stat_statements, so the slowest-statements check must say what is
missing instead of failing or passing; a third, embedded server with the extension preloaded shows
the check ranking real statements.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from bot.actions import ActionExecutor
from bot.demo import SickSystem
from bot.demo.system import DEMO_USER_ID
from bot.probes import PostgresProbe, ProbeRunner
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.engine import Diagnosis, diagnose
from bot.runbooks.model import Runbook
from bot.runbooks.params import bind_params
from bot.targets import Targets
from tests.conftest import _fresh_database
from tests.runbooks.conftest import embedded_server

ENABLE = ("shared_preload_libraries = 'pg_stat_statements'", "CREATE EXTENSION pg_stat_statements")


def defaults(runbook: Runbook, **given: Any) -> dict[str, Any]:
    return bind_params(runbook.params, [f"{k}={v}" for k, v in given.items()], None)


def probe_failures(diagnosis: Diagnosis) -> dict[str, str | None]:
    return {o.check_id: o.result.error for o in diagnosis.checks if o.result.status != "ok"}


async def test_every_db_check_and_preview_runs(
    catalogue: Catalogue, db_system: SickSystem, db_runner: ProbeRunner
) -> None:
    """Every SQL the db runbooks read with parses and runs here: no feature this server lacks."""
    failures = {}
    for runbook in catalogue:
        if not runbook.id.startswith("db."):
            continue
        params = defaults(runbook, **({"user_id": DEMO_USER_ID} if runbook.id == "db.user" else {}))
        probes = [(f"check {c.id}", c.probe) for c in runbook.checks]
        probes += [(f"action {a.id} preview", a.preview) for a in runbook.actions if a.preview]
        for name, probe in probes:
            if not isinstance(probe, PostgresProbe):
                continue
            result = await db_runner.run(probe, params, run_id="run-portable", timeout_s=5)
            if result.status != "ok":
                failures[f"{runbook.id} {name}"] = result.error
    assert failures == {}


async def test_slow_queries_runs_clean_and_says_how_to_enable_pg_stat_statements(
    catalogue: Catalogue, db_system: SickSystem, db_runner: ProbeRunner, db_server: str
) -> None:
    runbook = catalogue.get("db.slow-queries")
    assert runbook is not None
    diagnosis = await diagnose(runbook, defaults(runbook), db_runner)
    assert probe_failures(diagnosis) == {}
    status = {o.check_id: o.status for o in diagnosis.checks}
    assert status["running_slow"] == status["over_kill_limit"] == status["longest"] == "ok"
    longest = diagnosis.outcome("longest")
    assert longest is not None and longest.value == 0
    assert longest.result.rows == [[None, None, 0, None, "(no active statements)"]]

    available = diagnosis.outcome("statements_available")
    top = diagnosis.outcome("top_statements")
    assert available is not None and top is not None
    if db_server == "embedded-pg":  # as `make demo` starts it: nothing preloaded
        assert available.value is False
    if available.value:
        assert top.value is not None and top.result.rows
    else:
        assert available.status == "warn"
        assert all(step in available.explain for step in ENABLE)
        # Not run, no value to judge, and never "ok": the reason says what is missing and how to enable it.
        assert top.value is None and top.status == "unknown"
        assert all(step in top.reason for step in ENABLE)
        assert top.result.rows == []


@pytest.fixture(scope="module")
def preloaded_pg_admin_url() -> Iterator[str]:
    """An embedded server with pg_stat_statements in shared_preload_libraries."""
    with embedded_server(shared_preload_libraries="pg_stat_statements") as url:
        yield url


async def test_top_statements_ranks_statements_where_pg_stat_statements_is_loaded(
    catalogue: Catalogue, preloaded_pg_admin_url: str
) -> None:
    runbook = catalogue.get("db.slow-queries")
    assert runbook is not None
    for url in _fresh_database(preloaded_pg_admin_url):
        targets = Targets.parse({"targets": {"app_db": {"kind": "postgres", "dsn": url}}})
        async with ProbeRunner(targets) as runner:
            before = await diagnose(runbook, defaults(runbook), runner)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION pg_stat_statements")
                conn.execute("SELECT pg_sleep(0.3)")
            after = await diagnose(runbook, defaults(runbook), runner)
    top_before = before.outcome("top_statements")
    assert top_before is not None and top_before.value is None and top_before.status == "unknown"
    assert top_before.reason.endswith(
        "loaded but not created in this database: CREATE EXTENSION pg_stat_statements"
    )
    assert probe_failures(after) == {}
    available, top = after.outcome("statements_available"), after.outcome("top_statements")
    assert available is not None and available.value is True and available.status == "ok"
    assert top is not None and top.status == "warn"  # 300 ms mean: over 100, under 1000
    slowest = dict(zip(top.result.columns, top.result.rows[0], strict=True))
    assert slowest["query"] == "SELECT pg_sleep($1)" and slowest["calls"] == 1
    assert 300 <= slowest["mean_ms"] < 1000
    means = [row[0] for row in top.result.rows]
    assert means == sorted(means, reverse=True)


async def test_queries_over_kill_minutes_offer_cancel_and_terminate_with_their_rows_as_preview(
    catalogue: Catalogue, db_system: SickSystem, db_runner: ProbeRunner
) -> None:
    runbook = catalogue.get("db.slow-queries")
    assert runbook is not None
    pid = await db_system.start_slow_query(60)
    await asyncio.sleep(1.5)
    under = await diagnose(runbook, defaults(runbook), db_runner)  # kill_minutes=5
    assert under.outcome("over_kill_limit").status == "ok"  # type: ignore[union-attr]
    assert [s.ref for s in under.suggestions if s.kind == "action"] == []

    # A minute is too long to wait in a test; the SQL takes kill_minutes as a number of minutes,
    # so 0.02 (1.2 s) stands in for the 5 minutes a 560 s query is over.
    params = defaults(runbook) | {"kill_minutes": 0.02}
    over = await diagnose(runbook, params, db_runner)
    limit = over.outcome("over_kill_limit")
    assert limit is not None and limit.status == "crit" and limit.value == 1
    assert limit.result.values["pids"] == str(pid)
    assert over.outcome("longest").status == "ok", "the running time alone is far from 600 s"  # type: ignore[union-attr]
    assert [s.ref for s in over.suggestions if s.kind == "action"] == [
        "cancel_long_running",
        "terminate_long_running",
    ]
    for action_id in ("cancel_long_running", "terminate_long_running"):
        action = runbook.action(action_id)
        assert action is not None and action.preview is not None
        preview = await db_runner.run(action.preview, over.params, run_id="run-preview", timeout_s=5)
        assert preview.status == "ok", preview.error
        assert [row[0] for row in preview.rows] == [pid]

    cancel = runbook.action("cancel_long_running")
    assert cancel is not None
    async with ActionExecutor(db_system.load_targets()) as executor:
        done = await executor.run(cancel.step, over.params, run_id="run-cancel", timeout_s=5)
    assert done.status == "succeeded", done.error
    assert done.values["cancelled"] == 1
    for _ in range(50):
        after = await diagnose(runbook, params, db_runner)
        if after.outcome("over_kill_limit").value == 0:  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.1)
    assert after.outcome("over_kill_limit").status == "ok"  # type: ignore[union-attr]


async def test_activity_shows_leaked_connections_by_application(
    catalogue: Catalogue, db_system: SickSystem, db_runner: ProbeRunner
) -> None:
    runbook = catalogue.get("db.activity")
    assert runbook is not None
    await db_system.leak_connections(5)
    diagnosis = await diagnose(runbook, {}, db_runner)
    assert probe_failures(diagnosis) == {}
    total = diagnosis.outcome("total")
    assert total is not None and isinstance(total.value, int) and total.value >= 5
    by_application = diagnosis.outcome("by_application")
    assert by_application is not None
    assert ["demo-leaky-worker", "idle", 5] in [row[:3] for row in by_application.result.rows]


async def test_locks_shows_who_blocks_whom(
    catalogue: Catalogue, db_system: SickSystem, db_runner: ProbeRunner
) -> None:
    runbook = catalogue.get("db.locks")
    assert runbook is not None
    update = "UPDATE users SET email = email WHERE id = 1"
    async with (
        await psycopg.AsyncConnection.connect(db_system.postgres_dsn) as holder,
        await psycopg.AsyncConnection.connect(db_system.postgres_dsn, autocommit=True) as waiter,
    ):
        pids = (waiter.info.backend_pid, holder.info.backend_pid)
        await holder.execute(update)  # an open transaction holding the row lock
        blocked = asyncio.create_task(waiter.execute(update))
        for _ in range(50):  # until the waiter's UPDATE has reached the lock
            diagnosis = await diagnose(runbook, defaults(runbook), db_runner)
            if diagnosis.outcome("waiting").value:  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.1)
        await holder.rollback()
        await blocked
    assert probe_failures(diagnosis) == {}
    waiting = diagnosis.outcome("waiting")
    assert waiting is not None and waiting.value == 1 and waiting.status == "warn"
    blocking = diagnosis.outcome("blocking")
    assert blocking is not None
    pairs = [(row[0], row[2]) for row in blocking.result.rows]
    assert pairs == [pids]


async def test_sizes_reports_tables_and_dead_rows(
    catalogue: Catalogue, db_system: SickSystem, db_runner: ProbeRunner
) -> None:
    runbook = catalogue.get("db.sizes")
    assert runbook is not None
    clean = await diagnose(runbook, {}, db_runner)
    assert probe_failures(clean) == {}
    assert [o.status for o in clean.checks] == ["ok"] * len(clean.checks)
    size = clean.outcome("database_size")
    assert size is not None and isinstance(size.value, float) and size.value > 0
    tables = clean.outcome("tables")
    assert tables is not None
    assert {"users", "transactions"} <= {row[1] for row in tables.result.rows}

    # A backend reports its table statistics when it exits; closing the connection flushes them.
    async with await psycopg.AsyncConnection.connect(db_system.postgres_dsn, autocommit=True) as conn:
        await conn.execute("DELETE FROM users WHERE id % 2 = 0")
    for _ in range(50):
        dirty = await diagnose(runbook, {}, db_runner)
        if dirty.outcome("dead_rows").status != "ok":  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.1)
    dead = dirty.outcome("dead_rows")
    assert dead is not None and dead.status == "warn" and dead.result.rows[0][0] == "users"
    assert [s.ref for s in dirty.suggestions] == ["db.maintenance"]

"""Postgres actions against a real server: commit only on success, bind values only, nothing left running."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from bot.actions import ActionExecutor
from bot.runbooks.steps import PostgresWrite
from tests.actions.conftest import Executors
from tests.conftest import free_port
from tests.probes.conftest import make_targets

TERMINATE_IDLE = (
    "SELECT count(pg_terminate_backend(pid)) AS terminated FROM pg_stat_activity"
    " WHERE datname = current_database() AND state = 'idle' AND pid <> pg_backend_pid()"
)


@pytest.fixture
def executor(app_db_url: str, executor_for: Executors) -> ActionExecutor:
    return executor_for(make_targets(app_db={"kind": "postgres", "dsn": app_db_url}))


def write(sql: str, **extra: object) -> PostgresWrite:
    return PostgresWrite.model_validate({"target": "app_db", "sql": sql, **extra})


def setup(dsn: str, sql: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)


def one(dsn: str, sql: str, binds: dict[str, object] | None = None) -> object:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(sql, binds).fetchone()
    assert row is not None
    return row[0]


async def test_idle_connections_are_terminated(app_db_url: str, executor: ActionExecutor) -> None:
    held = await asyncio.gather(*(psycopg.AsyncConnection.connect(app_db_url) for _ in range(10)))
    pids = [conn.info.backend_pid for conn in held]
    try:
        result = await executor.run(write(TERMINATE_IDLE), {}, run_id="kill-idle", timeout_s=5)
        assert result.status == "succeeded", result.error
        assert result.values["terminated"] == 10
        assert result.columns == ["terminated"]
        assert result.rows == [[10]]
        for conn in held:
            with pytest.raises(psycopg.OperationalError):
                await conn.execute("SELECT 1")
        remaining = one(
            app_db_url, "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%(pids)s)", {"pids": pids}
        )
        assert remaining == 0
    finally:
        await asyncio.gather(*(conn.close() for conn in held))


async def test_an_update_commits_and_reports_rows(app_db_url: str, executor: ActionExecutor) -> None:
    setup(
        app_db_url,
        "CREATE TABLE accounts (id int PRIMARY KEY, status text);"
        " INSERT INTO accounts SELECT g, 'locked' FROM generate_series(1, 3) g;"
        " INSERT INTO accounts VALUES (4, 'active')",
    )
    step = write(
        "UPDATE accounts SET status = %(to)s WHERE status = %(from)s",
        binds={"to": "active", "from": "{status}"},
    )
    result = await executor.run(step, {"status": "locked"}, run_id="unlock", timeout_s=5)
    assert result.status == "succeeded", result.error
    assert result.values == {"rows_affected": 3}
    assert result.output == "UPDATE 3"
    assert one(app_db_url, "SELECT count(*) FROM accounts WHERE status = 'active'") == 4

    returning = write(
        "UPDATE accounts SET status = 'closed' WHERE id = %(id)s RETURNING id, status", binds={"id": 2}
    )
    result = await executor.run(returning, {}, run_id="close", timeout_s=5)
    assert result.status == "succeeded", result.error
    assert result.values == {"id": 2, "status": "closed", "rows_affected": 1}
    assert result.rows == [[2, "closed"]]


async def test_a_failing_statement_changes_nothing(app_db_url: str, executor: ActionExecutor) -> None:
    setup(
        app_db_url,
        "CREATE TABLE src (id int); CREATE TABLE dst (id int UNIQUE);"
        " INSERT INTO src SELECT generate_series(1, 5); INSERT INTO dst VALUES (4)",
    )
    # Deletes from src first, then fails inserting 4 into dst: the delete must not survive.
    step = write("WITH moved AS (DELETE FROM src RETURNING id) INSERT INTO dst SELECT id FROM moved")
    result = await executor.run(step, {}, run_id="move", timeout_s=5)
    assert result.status == "failed"
    assert result.error is not None
    assert "duplicate key" in result.error
    assert one(app_db_url, "SELECT count(*) FROM src") == 5
    assert one(app_db_url, "SELECT count(*) FROM dst") == 1
    # The pooled connection is clean afterwards: the next action works.
    again = await executor.run(write("DELETE FROM dst"), {}, run_id="next", timeout_s=5)
    assert again.status == "succeeded", again.error
    assert again.values["rows_affected"] == 1


def sleeping(dsn: str) -> int:
    return int(
        str(
            one(
                dsn,
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                " AND query LIKE 'SELECT pg_sleep(5)%' AND datname = current_database()",
            )
        )
    )


@pytest.mark.parametrize(("autocommit", "note"), [(False, "rolled back"), (True, "statement was cancelled")])
async def test_a_statement_timeout_cancels_the_statement(
    app_db_url: str, executor: ActionExecutor, autocommit: bool, note: str
) -> None:
    started = time.monotonic()
    result = await executor.run(
        write("SELECT pg_sleep(5)", autocommit=autocommit), {}, run_id="slow", timeout_s=1
    )
    assert result.status == "timeout"
    assert result.error is not None
    assert result.error.startswith("timed out after 1s")
    assert note in result.error
    assert time.monotonic() - started < 1.5
    assert sleeping(app_db_url) == 0


@pytest.mark.parametrize("autocommit", [False, True])
async def test_a_cancelled_run_leaves_no_statement_running(
    app_db_url: str, executor: ActionExecutor, autocommit: bool
) -> None:
    task = asyncio.create_task(
        executor.run(write("SELECT pg_sleep(5)", autocommit=autocommit), {}, run_id="c", timeout_s=10)
    )
    deadline = time.monotonic() + 3
    while sleeping(app_db_url) == 0:
        assert time.monotonic() < deadline, "the statement never started"
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sleeping(app_db_url) == 0
    after = await executor.run(write("SELECT 1 AS one"), {}, run_id="after", timeout_s=5)
    assert after.values["one"] == 1


async def test_vacuum_and_concurrent_index_need_autocommit(app_db_url: str, executor: ActionExecutor) -> None:
    setup(
        app_db_url,
        "CREATE TABLE items (id int, name text);"
        " INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 500) g",
    )
    refused = await executor.run(write("VACUUM ANALYZE items"), {}, run_id="v0", timeout_s=10)
    assert refused.status == "failed"
    assert "cannot run inside a transaction block" in (refused.error or "")

    vacuum = await executor.run(
        write("VACUUM (VERBOSE, ANALYZE) items", autocommit=True), {}, run_id="v1", timeout_s=10
    )
    assert vacuum.status == "succeeded", vacuum.error
    assert vacuum.values == {"rows_affected": None}
    assert 'vacuuming "' in vacuum.output
    assert one(app_db_url, "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'items'")

    index = await executor.run(
        write("CREATE INDEX CONCURRENTLY items_name ON items (name)", autocommit=True),
        {},
        run_id="i",
        timeout_s=10,
    )
    assert index.status == "succeeded", index.error
    assert index.output == "CREATE INDEX"
    assert (
        one(app_db_url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_name'::regclass") is True
    )


@pytest.mark.parametrize("autocommit", [False, True])
async def test_application_name_and_timeout_are_set_for_the_run(
    app_db_url: str, executor: ActionExecutor, autocommit: bool
) -> None:
    step = write(
        "SELECT current_setting('application_name') AS app, current_setting('statement_timeout') AS timeout,"
        " pg_sleep(0.3) IS NULL AS slept",
        autocommit=autocommit,
    )
    task = asyncio.create_task(executor.run(step, {}, run_id="run-77", timeout_s=4))
    seen: set[str] = set()
    while not task.done():
        with psycopg.connect(app_db_url, autocommit=True) as conn:
            seen |= {
                row[0]
                for row in conn.execute(
                    "SELECT application_name FROM pg_stat_activity WHERE query LIKE '%pg_sleep(0.3)%'"
                    " AND datname = current_database() AND pid <> pg_backend_pid()"
                )
            }
        await asyncio.sleep(0.02)
    result = task.result()
    assert result.status == "succeeded", result.error
    assert result.values["app"] == "opsbot:run-77"
    assert seen == {"opsbot:run-77"}
    timeout = str(result.values["timeout"])
    assert timeout.endswith("ms")
    assert 3000 <= int(timeout.removesuffix("ms")) < 4000


@pytest.mark.parametrize("autocommit", [False, True])
async def test_hostile_bind_values_stay_data(
    app_db_url: str, executor: ActionExecutor, autocommit: bool
) -> None:
    setup(
        app_db_url,
        "CREATE TABLE guard (id int); INSERT INTO guard VALUES (1); CREATE TABLE notes (body text)",
    )
    hostile = "'; DROP TABLE guard; --"
    step = write("INSERT INTO notes VALUES (%(body)s)", binds={"body": "{body}"}, autocommit=autocommit)
    result = await executor.run(step, {"body": hostile}, run_id="h", timeout_s=5)
    assert result.status == "succeeded", result.error
    assert one(app_db_url, "SELECT body FROM notes") == hostile
    assert one(app_db_url, "SELECT count(*) FROM guard") == 1

    # Without bind values the extended protocol still refuses a second statement.
    smuggled = await executor.run(
        write("DELETE FROM notes; DROP TABLE guard", autocommit=autocommit), {}, run_id="s", timeout_s=5
    )
    assert smuggled.status == "failed"
    assert "multiple commands" in (smuggled.error or "")
    assert one(app_db_url, "SELECT count(*) FROM guard") == 1
    assert one(app_db_url, "SELECT count(*) FROM notes") == 1


@pytest.mark.parametrize("autocommit", [False, True])
async def test_an_unreachable_server_fails_fast_without_the_password(
    executor_for: Executors, autocommit: bool
) -> None:
    password = "s3cret-db-pw"
    dsn = f"postgresql://opsbot:{password}@127.0.0.1:{free_port()}/app"
    executor = executor_for(make_targets(app_db={"kind": "postgres", "dsn": dsn}))
    started = time.monotonic()
    result = await executor.run(write("SELECT 1", autocommit=autocommit), {}, run_id="down", timeout_s=5)
    assert result.status == "failed"
    assert result.error is not None
    assert "refused" in result.error
    assert password not in result.model_dump_json()
    assert time.monotonic() - started < 2

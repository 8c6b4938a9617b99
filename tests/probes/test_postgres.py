"""Postgres probes against a real server: read-only, time-boxed, bind values only, JSON-safe rows."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import psycopg
import pytest
from pydantic import ValidationError

from bot.probes import PostgresProbe, ProbeRunner, ProbeSpecError
from bot.targets import Targets
from tests.conftest import free_port
from tests.probes.conftest import make_targets

Runners = Callable[[Targets], ProbeRunner]


@pytest.fixture
def runner(database_url: str, runner_for: Runners) -> ProbeRunner:
    return runner_for(make_targets(app_db={"kind": "postgres", "dsn": database_url}))


def probe(sql: str, **extra: object) -> PostgresProbe:
    return PostgresProbe.model_validate({"target": "app_db", "sql": sql, **extra})


async def test_idle_connections_are_counted(database_url: str, runner: ProbeRunner) -> None:
    held = await asyncio.gather(*(psycopg.AsyncConnection.connect(database_url) for _ in range(50)))
    try:
        result = await runner.run(
            probe(
                "SELECT count(*) AS idle FROM pg_stat_activity"
                " WHERE datname = current_database() AND state = 'idle'"
            ),
            {},
            run_id="idle-1",
            timeout_s=5,
        )
    finally:
        await asyncio.gather(*(conn.close() for conn in held))
    assert result.status == "ok", result.error
    assert isinstance(result.values["idle"], int)
    assert result.values["idle"] >= 50
    assert result.values["row_count"] == 1
    assert result.columns == ["idle"]


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE sneaky (id int)",
        "DELETE FROM victims",
        "UPDATE victims SET name = 'gone'",
        "WITH d AS (DELETE FROM victims RETURNING 1) SELECT count(*) FROM d",
    ],
)
async def test_writes_fail_in_the_read_only_transaction(
    database_url: str, runner: ProbeRunner, sql: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE victims (name text); INSERT INTO victims VALUES ('alice'), ('bob')")
    result = await runner.run(probe(sql), {}, run_id="ro", timeout_s=5)
    assert result.status == "error"
    assert result.error is not None
    assert "read-only transaction" in result.error
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM victims WHERE name <> 'gone'").fetchone() == (2,)
        assert conn.execute("SELECT to_regclass('sneaky')").fetchone() == (None,)


async def test_a_second_statement_cannot_escape_the_transaction(
    database_url: str, runner: ProbeRunner
) -> None:
    result = await runner.run(
        probe("SELECT 1; COMMIT; CREATE TABLE escaped (id int)"), {}, run_id="multi", timeout_s=5
    )
    assert result.status == "error"
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('escaped')").fetchone() == (None,)


async def test_statement_timeout_stops_a_slow_query_and_the_pool_recovers(runner: ProbeRunner) -> None:
    started = time.monotonic()
    result = await runner.run(probe("SELECT pg_sleep(5)"), {}, run_id="slow", timeout_s=1.0)
    elapsed = time.monotonic() - started
    assert result.status == "timeout"
    assert result.error == "timed out after 1s"
    assert elapsed < 1.5
    after = await runner.run(probe("SELECT 1 AS one"), {}, run_id="after", timeout_s=2)
    assert after.status == "ok"
    assert after.values["one"] == 1


async def test_application_name_carries_the_run_id(
    database_url: str, pg_admin_url: str, runner: ProbeRunner
) -> None:
    spec = probe(
        "SELECT current_setting('application_name') AS app,"
        " current_setting('statement_timeout') AS timeout,"
        " current_setting('transaction_read_only') AS read_only,"
        " pg_sleep(0.6) IS NULL AS slept"
    )
    running = asyncio.create_task(runner.run(spec, {}, run_id="run-7f3a", timeout_s=3))
    seen: list[str] = []
    async with await psycopg.AsyncConnection.connect(pg_admin_url, autocommit=True) as admin:
        for _ in range(50):
            cur = await admin.execute(
                "SELECT application_name FROM pg_stat_activity WHERE datname = %s AND state = 'active'",
                [psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]],
            )
            seen += [row[0] for row in await cur.fetchall()]
            if "opsbot:run-7f3a" in seen:
                break
            await asyncio.sleep(0.02)
    result = await running
    assert "opsbot:run-7f3a" in seen
    assert result.status == "ok", result.error
    assert result.values["app"] == "opsbot:run-7f3a"
    assert result.values["read_only"] == "on"
    assert result.values["timeout"] not in ("0", None)


HOSTILE = [
    "'; DROP TABLE victims; --",
    "$(reboot)",
    "x" * 10_000,
    "Ω≈ç√ 🚨🔥 \u202e",
    "%(other)s %s %%",
    "\\'; SELECT pg_sleep(10); --",
]


async def test_hostile_bind_values_are_only_ever_data(database_url: str, runner: ProbeRunner) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE victims (name text); INSERT INTO victims VALUES ('alice')")
    spec = probe(
        "SELECT %(v)s::text AS echoed, length(%(v)s::text) AS n, count(*) AS matches"
        " FROM victims WHERE name = %(v)s",
        binds={"v": "{value}"},
    )
    for value in HOSTILE:
        result = await runner.run(spec, {"value": value}, run_id="hostile", timeout_s=5)
        assert result.status == "ok", result.error
        assert result.values["echoed"] == value
        assert result.values["n"] == len(value)
        assert result.values["matches"] == 0
    nul = await runner.run(spec, {"value": "a\x00b"}, run_id="nul", timeout_s=5)
    assert nul.status == "error"
    assert nul.error is not None
    assert "NUL" in nul.error
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM victims").fetchone() == (1,)


async def test_literal_binds_and_missing_parameters(runner: ProbeRunner) -> None:
    spec = probe("SELECT %(limit)s::int + %(extra)s::int AS total", binds={"limit": "{limit}", "extra": 5})
    assert spec.param_names() == {"limit"}
    result = await runner.run(spec, {"limit": 37}, run_id="b", timeout_s=5)
    assert result.values["total"] == 42
    with pytest.raises(ProbeSpecError, match="parameter 'limit'"):
        await runner.run(spec, {}, run_id="b", timeout_s=5)


async def test_the_row_cap_marks_truncation(runner: ProbeRunner) -> None:
    sql = "SELECT g AS n FROM generate_series(1, 250) g"
    capped = await runner.run(probe(sql), {}, run_id="cap", timeout_s=5)
    assert len(capped.rows) == 100
    assert capped.truncated
    assert capped.values == {"n": 1, "row_count": 100, "latency_ms": capped.latency_ms}
    wide = await runner.run(probe(sql, max_rows=300), {}, run_id="cap", timeout_s=5)
    assert len(wide.rows) == 250
    assert not wide.truncated
    exact = await runner.run(probe(sql, max_rows=250), {}, run_id="cap", timeout_s=5)
    assert len(exact.rows) == 250
    assert not exact.truncated
    empty = await runner.run(probe("SELECT 1 AS n WHERE false"), {}, run_id="cap", timeout_s=5)
    assert empty.values["n"] is None
    assert empty.values["row_count"] == 0
    assert empty.columns == ["n"]


async def test_cells_are_json_safe(runner: ProbeRunner) -> None:
    result = await runner.run(
        probe(
            "SELECT 1.50::numeric AS amount, interval '1 hour 30 minutes' AS wait,"
            " timestamptz '2024-01-02 03:04:05+00' AS at, date '2024-02-29' AS day,"
            " '{\"a\": [1, 2]}'::jsonb AS doc, NULL::text AS nothing, 'NaN'::float8 AS nan,"
            " '00000000-0000-0000-0000-000000000001'::uuid AS id, '10.0.0.1'::inet AS addr,"
            " ARRAY[1.5, 2]::numeric[] AS nums, '\\xdeadbeef'::bytea AS raw"
        ),
        {},
        run_id="types",
        timeout_s=5,
    )
    assert result.status == "ok", result.error
    values = result.values
    assert values["amount"] == 1.5
    assert isinstance(values["amount"], float)
    assert values["wait"] == 5400.0
    assert isinstance(values["at"], str)
    assert values["at"].startswith("2024-01-02T03:04:05")
    assert values["day"] == "2024-02-29"
    assert values["doc"] == '{"a":[1,2]}'
    assert values["nothing"] is None
    assert values["nan"] is None
    assert values["id"] == "00000000-0000-0000-0000-000000000001"
    assert values["addr"] == "10.0.0.1"
    assert result.rows[0][4] == {"a": [1, 2]}
    assert result.rows[0][9] == [1.5, 2.0]
    json.dumps(result.rows, allow_nan=False)
    assert json.loads(result.model_dump_json())["values"]["wait"] == 5400.0


async def test_refused_connection_is_a_quick_error_every_time() -> None:
    targets = make_targets(
        app_db={"kind": "postgres", "dsn": f"postgresql://u:pw-zz-9@127.0.0.1:{free_port()}/x"}
    )
    async with ProbeRunner(targets) as runner:
        for attempt in range(3):
            started = time.monotonic()
            result = await runner.run(probe("SELECT 1"), {}, run_id=f"refused-{attempt}", timeout_s=3)
            assert result.status == "error"
            assert result.error == "cannot connect: Connection refused"
            assert time.monotonic() - started < 0.5


async def test_a_database_that_comes_back_is_used_again(database_url: str, runner_for: Runners) -> None:
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    port = free_port()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if str(info.get("host", "")).startswith("/"):
            up_reader, up_writer = await asyncio.open_unix_connection(
                f"{info['host']}/.s.PGSQL.{info.get('port', 5432)}"
            )
        else:
            up_reader, up_writer = await asyncio.open_connection(
                info.get("host", "127.0.0.1"), int(info.get("port", 5432))
            )

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    dsn = psycopg.conninfo.make_conninfo(database_url, host="127.0.0.1", port=port)
    runner = runner_for(make_targets(app_db={"kind": "postgres", "dsn": dsn}))
    down = await runner.run(probe("SELECT 1 AS one"), {}, run_id="down", timeout_s=2)
    assert down.error == "cannot connect: Connection refused"
    proxy = await asyncio.start_server(forward, "127.0.0.1", port)
    try:
        up = await runner.run(probe("SELECT 1 AS one"), {}, run_id="up", timeout_s=2)
    finally:
        proxy.close()
    assert up.status == "ok", up.error
    assert up.values["one"] == 1


async def test_a_missing_database_is_reported_by_name(pg_admin_url: str, runner_for: Runners) -> None:
    dsn = psycopg.conninfo.make_conninfo(pg_admin_url, dbname="opsbot_no_such_db")
    runner = runner_for(make_targets(app_db={"kind": "postgres", "dsn": dsn}))
    result = await runner.run(probe("SELECT 1"), {}, run_id="nodb", timeout_s=3)
    assert result.status == "error"
    assert result.error == 'cannot connect: database "opsbot_no_such_db" does not exist'


async def test_a_server_that_never_answers_costs_the_timeout(silent_port: int, runner_for: Runners) -> None:
    targets = make_targets(
        app_db={"kind": "postgres", "dsn": f"postgresql://u@127.0.0.1:{silent_port}/x", "connect_timeout": 2}
    )
    runner = runner_for(targets)
    started = time.monotonic()
    result = await runner.run(probe("SELECT 1"), {}, run_id="silent", timeout_s=0.8)
    assert result.status == "timeout"
    assert time.monotonic() - started < 0.8 + 0.5


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"sql": "SELECT %s"}, "only named bind parameters"),
        ({"sql": "SELECT 'a' LIKE 'a%'"}, "write %% for a literal %"),
        ({"sql": "SELECT %(x)s"}, "binds has no 'x'"),
        ({"sql": "SELECT 1", "binds": {"x": 1}}, "binds.x is not used"),
        ({"sql": "SELECT %(x)s", "binds": {"x": "pre-{p}"}}, "mixes text and a placeholder"),
        ({"sql": "SELECT 1", "max_rows": 0}, "greater than or equal to 1"),
        ({"sql": "SELECT 1", "target": "App-DB"}, "String should match pattern"),
    ],
)
def test_bad_specs_are_refused_at_validation(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PostgresProbe.model_validate({"target": "app_db", **spec})


def test_literal_percent_is_written_doubled() -> None:
    assert probe("SELECT 'a' LIKE 'a%%' AS ok").sql.count("%%") == 1


async def test_errors_are_redacted_with_the_targets_secrets(database_url: str, runner_for: Runners) -> None:
    dsn = psycopg.conninfo.make_conninfo(database_url, password="pw-secret-123")
    runner = runner_for(make_targets(app_db={"kind": "postgres", "dsn": dsn}))
    result = await runner.run(probe("SELECT 'pw-secret-123'::int"), {}, run_id="red", timeout_s=5)
    assert result.status == "error"
    assert result.error == 'invalid input syntax for type integer: "***"'

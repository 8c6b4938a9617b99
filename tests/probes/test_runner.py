"""The runner's contract: specs from runbook data, checked against the registry, never raising."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import yaml
from pydantic import ValidationError
from structlog.testing import capture_logs

from bot.probes import (
    PROBE_SPEC,
    CommandProbe,
    HttpProbe,
    PostgresProbe,
    ProbeRunner,
    ProbeSpecError,
    PrometheusProbe,
    RedisProbe,
    parse_probe,
    run_probe,
)
from bot.probes.base import check_literal_or_ref, param_ref
from bot.targets import Targets
from tests.probes.conftest import make_targets

Runners = Callable[[Targets], ProbeRunner]

RUNBOOK_CHECKS = """\
- kind: postgres
  target: app_db
  sql: SELECT count(*) AS idle FROM pg_stat_activity WHERE state = %(state)s
  binds: {state: idle}
- {kind: redis, target: cache, command: info, section: stats}
- {kind: http, target: api, path: /health, json_fields: {database: checks.database}}
- {kind: prometheus, target: prometheus, query: 'up{job="{job}"}'}
- {kind: command, target: host, argv: [systemctl, is-active, "{service}"]}
"""

TARGETS = make_targets(
    app_db={"kind": "postgres", "dsn": "postgresql://u@127.0.0.1:1/x"},
    host={"kind": "command", "allowed_programs": ["echo"]},
)


def test_runbook_data_parses_into_typed_specs() -> None:
    specs = [parse_probe(item) for item in yaml.safe_load(RUNBOOK_CHECKS)]
    assert [type(spec) for spec in specs] == [
        PostgresProbe,
        RedisProbe,
        HttpProbe,
        PrometheusProbe,
        CommandProbe,
    ]
    assert [sorted(spec.param_names()) for spec in specs] == [[], [], [], ["job"], ["service"]]
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        parse_probe({"kind": "mysql", "target": "db"})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        parse_probe({"kind": "redis", "target": "cache", "command": "PING", "raw": "FLUSHALL"})
    schema = PROBE_SPEC.json_schema()
    assert set(schema["discriminator"]["mapping"]) == {"postgres", "redis", "http", "prometheus", "command"}
    json.dumps(schema)


def test_check_refuses_specs_the_registry_cannot_run() -> None:
    runner = ProbeRunner(TARGETS)
    runner.check(PostgresProbe(target="app_db", sql="SELECT 1"))
    with pytest.raises(ProbeSpecError, match=r"unknown target 'cache' \(known: app_db, host\)"):
        runner.check(RedisProbe(target="cache", command="PING"))
    with pytest.raises(ProbeSpecError, match="a redis probe cannot run against 'app_db', a postgres target"):
        runner.check(RedisProbe(target="app_db", command="PING"))
    with pytest.raises(ProbeSpecError, match="systemctl is not an allowed program"):
        runner.check(CommandProbe(target="host", argv=["systemctl", "status"]))


async def test_run_refuses_missing_params_bad_timeouts_and_a_closed_runner(runner_for: Runners) -> None:
    runner = runner_for(TARGETS)
    spec = CommandProbe(target="host", argv=["echo", "{word}"])
    with pytest.raises(ProbeSpecError, match="needs parameter 'word'"):
        await runner.run(spec, {}, run_id="m", timeout_s=1)
    with pytest.raises(ProbeSpecError, match="timeout must be positive"):
        await runner.run(spec, {"word": "hi"}, run_id="m", timeout_s=0)
    assert (await runner.run(spec, {"word": "hi"}, run_id="m", timeout_s=1)).rows == [["hi"]]
    await runner.close()
    with pytest.raises(RuntimeError, match="closed"):
        await runner.run(spec, {"word": "hi"}, run_id="m", timeout_s=1)


async def test_run_probe_is_a_one_shot_runner_and_logs_the_outcome() -> None:
    with capture_logs() as logs:
        result = await run_probe(
            CommandProbe(target="host", argv=["echo", "ok"]), TARGETS, {}, run_id="once", timeout_s=2
        )
        failed = await run_probe(
            PostgresProbe(target="app_db", sql="SELECT 1"), TARGETS, {}, run_id="twice", timeout_s=2
        )
    assert result.status == "ok"
    assert result.rows == [["ok"]]
    assert failed.status == "error"
    assert failed.error == "cannot connect: Connection refused"
    assert [(log["event"], log["run_id"], log["status"], log["log_level"]) for log in logs] == [
        ("probe_finished", "once", "ok", "debug"),
        ("probe_finished", "twice", "error", "warning"),
    ]


def test_a_reference_is_the_whole_value_or_nothing() -> None:
    assert param_ref("{service}") == "service"
    assert param_ref("{service}\n") is None
    assert param_ref("{1x}") is None
    assert param_ref(3) is None
    for bad in ("{service}\n", "x{a}", "{a}{b}", "{", "}"):
        with pytest.raises(ValueError, match="mixes text and a placeholder"):
            check_literal_or_ref(bad, "v")
    check_literal_or_ref("plain text", "v")

"""The catalogue loads, lints clean, covers the seeds' commands, and every check can run here."""

from __future__ import annotations

from typing import Any

from bot.demo import SickSystem
from bot.demo.system import DEMO_USER_ID
from bot.probes import ProbeRunner
from bot.runbooks.catalogue import Catalogue, lint, load_catalogue
from bot.runbooks.engine import diagnose
from bot.runbooks.model import Runbook
from bot.runbooks.params import bind_params
from bot.runbooks.steps import CommandRun, HttpCall
from bot.targets import CommandTarget
from tests.runbooks.conftest import RUNBOOKS, SEEDS

# A valid value for each required parameter a diagnosis needs (the rest use defaults).
SAMPLE_WORDS: dict[str, list[str]] = {"db.user": [f"user_id={DEMO_USER_ID}"]}


def params_for(runbook: Runbook) -> dict[str, Any]:
    return bind_params(runbook.params, SAMPLE_WORDS.get(runbook.id, []), None)


def test_every_file_loads_and_lints_clean() -> None:
    catalogue = load_catalogue(RUNBOOKS)
    assert len(catalogue) >= 45
    assert lint(catalogue, SEEDS if SEEDS.is_dir() else None) == []


def test_the_named_commands_exist(catalogue: Catalogue) -> None:
    for family, sub in [
        ("db", "connections"),
        ("db", "activity"),
        ("db", "slow-queries"),
        ("db", "locks"),
        ("db", "sizes"),
        ("db", "indexes"),
        ("cache", "stats"),
        ("health", None),
        ("diagnose", "p0"),
        ("diagnose", "p1"),
        ("diagnose", "p2"),
        ("deploy", "rollback"),
        ("dr", "backup"),
    ]:
        assert catalogue.for_command(family, sub) is not None, (family, sub)
    daily = catalogue.get("health.daily")
    assert daily is not None and daily.schedule is not None
    assert daily.schedule.cron == "0 8 * * *"


def test_risk_levels_follow_the_house_rules(catalogue: Catalogue) -> None:
    risks = {(rb.id, a.id): a.risk for rb in catalogue for a in rb.actions}
    assert risks[("cache.stats", "flushdb")] == "critical"
    assert risks[("db.connections", "terminate_idle")] == "high"
    assert risks[("db.slow-queries", "terminate_long_running")] == "high"
    assert risks[("cache.optimize", "set_allkeys_lru")] == "high"
    assert risks[("flags.manage", "kill_switch")] == "high"
    assert risks[("deploy.blue-green", "switch_to_green")] == "critical"
    assert risks[("dr.failover", "promote_standby")] == "critical"
    assert risks[("db.indexes", "create_idx_users_email")] == "high"
    for runbook in catalogue:
        for action in runbook.actions:
            if action.restarts_service:
                assert action.risk in ("high", "critical"), (runbook.id, action.id)


async def test_every_probe_and_command_step_can_run_against_the_sick_system(
    catalogue: Catalogue, sick_system: SickSystem, runner: ProbeRunner
) -> None:
    targets = sick_system.load_targets()
    host = targets.get_kind("host", CommandTarget)
    for runbook in catalogue:
        for check in runbook.checks:
            runner.check(check.probe)
        for action in runbook.actions:
            if action.preview is not None:
                runner.check(action.preview)
            step = action.step
            if isinstance(step, CommandRun):
                for argv in step.argvs:
                    assert host.program_path(str(argv[0])) is not None, (runbook.id, action.id, argv)
            if isinstance(step, HttpCall | CommandRun) or step.kind in ("postgres", "redis"):
                assert getattr(step, "target", None) in targets, (runbook.id, action.id)


# Checks the test servers cannot answer, so they are rightly unknown (fail closed), each with the
# reason a person would be shown.
CANNOT_SEE_HERE = {
    # The test Redis runs without maxmemory: "used against maxmemory" has no value.
    "cache.optimize.memory_used": "no value",
    # The test PostgreSQL does not preload pg_stat_statements; the check's SQL says so itself.
    "db.slow-queries.top_statements": "pg_stat_statements is not enabled",
}


async def test_every_runbook_diagnoses_without_an_unknown_check(
    catalogue: Catalogue, runner: ProbeRunner
) -> None:
    failures = []
    for runbook in catalogue:
        diagnosis = await diagnose(runbook, params_for(runbook), runner)
        failures += [
            f"{runbook.id}.{o.check_id}: {o.reason}"
            for o in diagnosis.checks
            if o.status == "unknown"
            and not o.reason.startswith(CANNOT_SEE_HERE.get(f"{runbook.id}.{o.check_id}", "\0"))
        ]
    assert failures == []


async def test_the_sick_system_is_seen_as_sick(catalogue: Catalogue, runner: ProbeRunner) -> None:
    p0 = catalogue.get("incident.p0")
    assert p0 is not None
    diagnosis = await diagnose(p0, params_for(p0), runner)
    assert diagnosis.overall == "crit"
    error_rate = diagnosis.outcome("error_rate")
    assert error_rate is not None and error_rate.value == 7.0
    p2 = catalogue.get("incident.p2")
    assert p2 is not None
    p99 = (await diagnose(p2, {}, runner)).outcome("p99")
    assert p99 is not None and p99.status == "crit" and p99.value == 3.2


# Action parameters a step needs, for executing every SQL action once against the demo database.
ACTION_WORDS: dict[str, list[str]] = {
    "kill_switch": ["flag=new_checkout"],
    "release_kill_switch": ["flag=ai_concierge"],
    "set_enabled": ["flag=new_checkout", "enabled=false"],
    "set_rollout": ["flag=new_checkout", "percentage=50"],
}
# ALTER SYSTEM rewrites the shared server's postgresql.auto.conf: never from a test.
SERVER_WIDE = {("db.slow-queries", "log_slow_statements"), ("db.slow-queries", "reload_config")}


async def test_every_postgres_action_step_executes_on_the_demo_database(
    catalogue: Catalogue, sick_system: SickSystem
) -> None:
    import psycopg

    from bot.runbooks.steps import PostgresWrite

    executed = 0
    for runbook in catalogue:
        for action in runbook.actions:
            step = action.step
            if not isinstance(step, PostgresWrite) or (runbook.id, action.id) in SERVER_WIDE:
                continue
            values = {
                **params_for(runbook),
                **bind_params(action.params, ACTION_WORDS.get(action.id, []), None),
            }
            binds = {
                key: values[str(raw)[1:-1]] if str(raw).startswith("{") else raw
                for key, raw in step.binds.items()
            }
            async with await psycopg.AsyncConnection.connect(
                sick_system.postgres_dsn, autocommit=step.autocommit
            ) as conn:
                await conn.execute(step.sql, binds)  # type: ignore[arg-type]
                if not step.autocommit:
                    await conn.commit()
            executed += 1
    assert executed >= 15

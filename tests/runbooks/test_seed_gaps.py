"""The seed gaps closed for issue #15, each run against the simulated sick system.

Every test here fails if the runbook goes back to what the audit found: two approvals for one
emergency restart, the wrong service name, a looser rollback threshold, a check that cannot go red.
"""

from __future__ import annotations

import os
import re
import time

import pytest

from bot.actions import ActionExecutor
from bot.approvals.policy import Policy
from bot.demo import SickSystem
from bot.probes import ProbeRunner
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.engine import diagnose
from bot.runbooks.model import Action, Runbook
from bot.runbooks.params import ParamError, bind_params


def runbook_named(catalogue: Catalogue, runbook_id: str) -> Runbook:
    runbook = catalogue.get(runbook_id)
    assert runbook is not None, runbook_id
    return runbook


def action_named(catalogue: Catalogue, runbook_id: str, action_id: str) -> Action:
    action = runbook_named(catalogue, runbook_id).action(action_id)
    assert action is not None, (runbook_id, action_id)
    return action


async def test_emergency_restart_is_one_approved_stop_wait_start(
    catalogue: Catalogue, sick_system: SickSystem
) -> None:
    runbook = runbook_named(catalogue, "service.restart")
    assert runbook.action("emergency_stop") is None and runbook.action("emergency_start") is None
    action = action_named(catalogue, "service.restart", "emergency_restart")
    assert action.risk == "high" and action.restarts_service
    params = bind_params(runbook.params, ["api"], runbook.command.positional if runbook.command else None)
    async with ActionExecutor(sick_system.load_targets()) as executor:
        result = await executor.run(action.step, params, run_id="r8", timeout_s=action.timeout_s)
    assert result.status == "succeeded", result.error
    assert sick_system.host.calls()[-3:] == [
        "docker compose stop api",
        "sleep 60",
        "docker compose up -d api",
    ]


def test_host_disk_deletes_and_full_restarts_need_two_approvals(catalogue: Catalogue) -> None:
    restart_all = action_named(catalogue, "service.restart", "restart_all")
    rotate_logs = action_named(catalogue, "host.disk", "rotate_logs")
    assert rotate_logs.step == restart_all.step
    assert rotate_logs.risk == restart_all.risk == "critical"
    assert action_named(catalogue, "host.disk", "delete_old_backups").risk == "critical"
    for action_id in ("rotate_logs", "delete_old_backups"):
        assert Policy().rule_for("host.disk", action_id, "critical").approvals == 2


async def test_db_troubleshoot_looks_at_and_restarts_the_db_container(
    catalogue: Catalogue, sick_system: SickSystem, runner: ProbeRunner
) -> None:
    runbook = runbook_named(catalogue, "db.troubleshoot")
    sick = await diagnose(runbook, {}, runner)
    assert [o.status for o in (sick.outcome("disk_used"), sick.outcome("df"))] == ["crit", "ok"]
    assert "docker exec db df -h" in sick_system.host.calls()
    sick_system.make_healthy()
    healthy = await diagnose(runbook, {}, runner)
    assert healthy.outcome("disk_used").status == "ok"  # type: ignore[union-attr]
    action = action_named(catalogue, "db.troubleshoot", "restart_postgres_container")
    async with ActionExecutor(sick_system.load_targets()) as executor:
        result = await executor.run(action.step, {}, run_id="r10", timeout_s=action.timeout_s)
    assert result.status == "succeeded", result.error
    assert sick_system.host.calls()[-2:] == ["docker restart db", "sleep 10"]


async def test_api_errors_suggests_a_rollback_only_over_ten_percent(
    catalogue: Catalogue, runner: ProbeRunner
) -> None:
    runbook = runbook_named(catalogue, "api.errors")
    diagnosis = await diagnose(runbook, {}, runner)
    error_rate, rollback_line = diagnosis.outcome("error_rate"), diagnosis.outcome("rollback_line")
    assert error_rate is not None and rollback_line is not None
    assert (error_rate.value, error_rate.status) == (7.0, "crit")  # pages (> 5 %) …
    assert rollback_line.status == "ok"  # … but is under seed 001's rollback line
    refs = {s.ref for s in diagnosis.suggestions}
    assert "flags.manage" in refs and "deploy.rollback" not in refs
    check = runbook.check("rollback_line")
    assert check is not None
    assert (check.judge(10.0), check.judge(10.5)) == ("ok", "crit")


async def test_over_55_connections_offers_the_circuit_breaker(
    catalogue: Catalogue, sick_system: SickSystem, runner: ProbeRunner
) -> None:
    runbook = runbook_named(catalogue, "db.connections")
    params = bind_params(runbook.params, [], None)
    before = await diagnose(runbook, params, runner)
    assert "circuit_break_external" not in {s.ref for s in before.suggestions}
    await sick_system.leak_connections(56)
    diagnosis = await diagnose(runbook, params, runner)
    total = diagnosis.outcome("total")
    assert total is not None and total.status == "crit"
    assert "circuit_break_external" in {s.ref for s in diagnosis.suggestions}
    action = action_named(catalogue, "db.connections", "circuit_break_external")
    assert action.step == action_named(catalogue, "deps.ai", "open_circuit_breaker").step
    async with ActionExecutor(sick_system.load_targets()) as executor:
        result = await executor.run(action.step, {}, run_id="cb", timeout_s=5)
    assert result.status == "succeeded", result.error
    assert sick_system.api_state.admin_calls[-1].body == {"dependency": "together_ai", "state": "open"}


ROLLBACKS = [
    (
        "deploy.rollback",
        "rollback_containers",
        ["version=v1.2.2"],
        [
            "git checkout v1.2.2",
            "npm run build",
            "docker build -t swipesavvy:rollback .",
            "docker stop swipesavvy-backend-current",
            "docker run -d -p 8000:8000 --name swipesavvy-backend swipesavvy:rollback",
        ],
    ),
    (
        "deploy.rollback",
        "rollback_systemd",
        ["commit=5b7e8d6"],
        [
            "git checkout 5b7e8d6",
            "pip install -r backend/requirements.txt",
            "systemctl restart floyo-backend",
        ],
    ),
    (
        "deploy.fresh",
        "rollback",
        [],
        [
            "docker pull bot-api:phase-5",
            "docker compose down",
            "docker compose -f docker-compose.production.yml up -d",
        ],
    ),
    ("deploy.blue-green", "quick_rollback", [], ["docker start api", "docker stop api-green"]),
]


@pytest.mark.parametrize(("runbook_id", "action_id", "words", "ran"), ROLLBACKS)
async def test_rollbacks_are_critical_command_sequences(
    catalogue: Catalogue,
    sick_system: SickSystem,
    runbook_id: str,
    action_id: str,
    words: list[str],
    ran: list[str],
) -> None:
    action = action_named(catalogue, runbook_id, action_id)
    assert action.risk == "critical" and action.restarts_service
    params = bind_params(action.params, words, None)
    async with ActionExecutor(sick_system.load_targets()) as executor:
        result = await executor.run(action.step, params, run_id=action_id, timeout_s=action.timeout_s)
    assert result.status == "succeeded", result.error
    assert sick_system.host.calls()[-len(ran) :] == ran


@pytest.mark.parametrize(
    ("action_id", "word"),
    [
        ("rollback_containers", "version=--help"),
        ("rollback_containers", "version=v1.2.2;reboot"),
        ("rollback_containers", "version=main"),
        ("rollback_systemd", "commit=HEAD~1"),
        ("rollback_systemd", "commit=-f"),
    ],
)
def test_a_rollback_target_must_be_a_tag_or_commit(catalogue: Catalogue, action_id: str, word: str) -> None:
    action = action_named(catalogue, "deploy.rollback", action_id)
    with pytest.raises(ParamError):
        bind_params(action.params, [word], None)


async def test_blue_green_starts_green_on_8001_as_one_action(
    catalogue: Catalogue, sick_system: SickSystem
) -> None:
    action = action_named(catalogue, "deploy.blue-green", "start_green_container")
    assert action.risk == "high" and not action.restarts_service
    async with ActionExecutor(sick_system.load_targets()) as executor:
        result = await executor.run(action.step, {}, run_id="green", timeout_s=action.timeout_s)
    assert result.status == "succeeded", result.error
    assert sick_system.host.calls()[-3:] == [
        "docker pull bot-api:latest",
        "docker run -d --name api-green -p 8001:8000 -e DATABASE_URL -e REDIS_URL bot-api:latest",
        "sleep 10",
    ]


CHECKS_THAT_GO_RED = [
    ("deploy.blue-green", "secret_leaks", "warn"),
    ("deploy.blue-green", "smoke_green", "crit"),
    ("deploy.fresh", "smoke_health", "crit"),
    ("deploy.fresh", "smoke_auth", "crit"),
    ("dr.recovery", "smoke_health", "crit"),
]


@pytest.mark.parametrize(("runbook_id", "check_id", "sick_status"), CHECKS_THAT_GO_RED)
async def test_checks_that_were_manual_go_red_and_green(
    catalogue: Catalogue,
    sick_system: SickSystem,
    runner: ProbeRunner,
    runbook_id: str,
    check_id: str,
    sick_status: str,
) -> None:
    runbook = runbook_named(catalogue, runbook_id)
    sick = (await diagnose(runbook, {}, runner)).outcome(check_id)
    assert sick is not None and sick.status == sick_status, sick
    sick_system.make_healthy()
    healthy = (await diagnose(runbook, {}, runner)).outcome(check_id)
    assert healthy is not None and healthy.status == "ok", healthy


async def test_a_damaged_backup_fails_gunzip_t(
    catalogue: Catalogue, sick_system: SickSystem, runner: ProbeRunner
) -> None:
    runbook = runbook_named(catalogue, "dr.recovery")
    valid = (await diagnose(runbook, {}, runner)).outcome("backups_valid")
    assert valid is not None and valid.status == "ok", valid
    (sick_system.host.root / "backups" / "db_19990101.sql.gz").write_bytes(b"\x1f\x8b\x08\x00 cut short")
    damaged = (await diagnose(runbook, {}, runner)).outcome("backups_valid")
    assert damaged is not None and damaged.status == "crit"
    assert "db_19990101.sql.gz" in str(damaged.result.rows)


async def test_full_recovery_stops_and_starts_as_approved_sequences(
    catalogue: Catalogue, sick_system: SickSystem
) -> None:
    stop = action_named(catalogue, "dr.recovery", "stop_and_start_db")
    start = action_named(catalogue, "dr.recovery", "start_cache_and_api")
    assert (stop.risk, start.risk) == ("critical", "high")
    assert action_named(catalogue, "dr.recovery", "restore").step.kind == "manual"
    async with ActionExecutor(sick_system.load_targets()) as executor:
        for action in (stop, start):
            result = await executor.run(action.step, {}, run_id=action.id, timeout_s=action.timeout_s)
            assert result.status == "succeeded", result.error
    assert sick_system.host.calls()[-6:] == [
        "docker compose down",
        "docker compose up -d db",
        "sleep 30",
        "docker compose up -d cache",
        "docker compose up -d api",
        "sleep 15",
    ]


async def test_cache_warm_up_request_and_bgsave_are_no_longer_manual(
    catalogue: Catalogue, runner: ProbeRunner
) -> None:
    warm = (await diagnose(runbook_named(catalogue, "cache.stats"), {}, runner)).outcome("warm_request")
    assert warm is not None and warm.status == "ok", warm
    snapshot = action_named(catalogue, "cache.optimize", "snapshot")
    assert (snapshot.risk, snapshot.step.kind) == ("low", "redis")


async def test_backup_freshness_is_scheduled_and_goes_red_when_backups_are_old(
    catalogue: Catalogue, sick_system: SickSystem, runner: ProbeRunner
) -> None:
    runbook = runbook_named(catalogue, "dr.backup")
    assert runbook.schedule is not None and runbook.schedule.cron == "0 8 * * *"
    fresh = (await diagnose(runbook, {}, runner)).outcome("recent")
    assert fresh is not None and fresh.status == "ok", fresh
    two_days_ago = time.time() - 2 * 86_400
    for backup in (sick_system.host.root / "backups").iterdir():
        os.utime(backup, (two_days_ago, two_days_ago))
    stale = (await diagnose(runbook, {}, runner)).outcome("recent")
    assert stale is not None and stale.status == "crit" and stale.value == 0
    assert "backup_now" in {s.ref for s in (await diagnose(runbook, {}, runner)).suggestions}


@pytest.mark.parametrize(
    ("runbook_id", "check_id", "target"),
    [
        ("health.services", "readiness", "api"),
        ("health.services", "rag_health", "rag"),
        ("health.services", "guardrails_health", "guardrails"),
        ("health.services", "frontend_health", "frontend"),
        ("deps.ai", "provider", "ai_provider"),
    ],
)
async def test_neighbour_services_are_probed_on_their_own_targets(
    catalogue: Catalogue,
    sick_system: SickSystem,
    runner: ProbeRunner,
    runbook_id: str,
    check_id: str,
    target: str,
) -> None:
    runbook = runbook_named(catalogue, runbook_id)
    check = runbook.check(check_id)
    assert check is not None and check.probe.target == target
    params = bind_params(runbook.params, [], runbook.command.positional if runbook.command else None)
    sick = (await diagnose(runbook, params, runner)).outcome(check_id)
    assert sick is not None and sick.status == "crit" and sick.result.values["status_code"] == 503
    sick_system.make_healthy()
    healthy = (await diagnose(runbook, params, runner)).outcome(check_id)
    assert healthy is not None and healthy.status == "ok", healthy


def _manual_text(runbook: Runbook) -> str:
    steps = [*runbook.manual]
    for action in runbook.actions:
        if action.step.kind == "manual":
            steps += action.step.steps
    return "\n".join(steps)


def test_incident_checklists_point_at_opsbots_own_incident_commands(catalogue: Catalogue) -> None:
    texts = {r.id: _manual_text(r) for r in catalogue if r.id.startswith("incident.")}
    everything = "\n".join(texts.values())
    for feature in ("/incident declare", "Page on-call", "/incident update", "/incident postmortem"):
        assert feature in everything, feature
    assert "/incident declare" in texts["incident.major"] and "/incident update" in texts["incident.major"]
    assert "Page on-call" in texts["incident.p0"]
    assert "/incident postmortem" in texts["incident.review"]
    for by_hand in ("Post to #incident-response", "Page the on-call engineer", "Write the incident report"):
        assert by_hand not in everything, by_hand


async def test_fresh_deployment_judges_what_runbook_1_expects(
    catalogue: Catalogue, sick_system: SickSystem, runner: ProbeRunner
) -> None:
    runbook = runbook_named(catalogue, "deploy.fresh")
    checks = ("docker_version", "redis_version", "ready", "uvicorn")

    async def statuses() -> dict[str, str]:
        diagnosis = await diagnose(runbook, {}, runner)
        return {c: o.status for c in checks if (o := diagnosis.outcome(c)) is not None}

    sick_system.make_healthy()
    assert await statuses() == dict.fromkeys(checks, "ok")
    sick_system.make_sick()
    assert (await statuses())["ready"] == "crit"  # 503: a readiness check failing
    sick_system.host.set_knob("docker_daemon", "down")
    sick_system.host.set_knob("container:api", "exited")
    red = await statuses()
    assert (red["docker_version"], red["uvicorn"]) == ("crit", "crit")
    version = runbook.check("docker_version")
    assert version is not None and version.probe.kind == "command" and version.probe.match is not None
    assert [bool(re.search(version.probe.match, f" Server Version: {v}")) for v in OLD_AND_NEW_DOCKER] == [
        False,
        False,
        True,
        True,
        True,
    ]
    redis_version = runbook.check("redis_version")
    assert redis_version is not None and redis_version.judge(6) == "crit" and redis_version.judge(7) == "ok"


OLD_AND_NEW_DOCKER = ("19.03.15", "1.13.1", "20.10.24", "24.0.7", "100.1.0")


async def test_connection_count_over_time_is_judged_by_prometheus(
    catalogue: Catalogue, sick_system: SickSystem, runner: ProbeRunner
) -> None:
    runbook = runbook_named(catalogue, "db.activity")
    queries = {c.id: getattr(c.probe, "query", "") for c in runbook.checks}
    assert "deriv(" in queries["growth"] and "min_over_time(" in queries["leak_alert"]
    assert not any("again" in step for step in runbook.manual)
    sick = await diagnose(runbook, {}, runner)
    assert [sick.outcome(c).status for c in ("growth", "leak_alert")] == ["warn", "warn"]  # type: ignore[union-attr]
    sick_system.make_healthy()
    healthy = await diagnose(runbook, {}, runner)
    assert [healthy.outcome(c).status for c in ("growth", "leak_alert")] == ["ok", "ok"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("check_id", "action_id", "index"),
    [
        ("explain_reconciliation", "create_ix_reconciliation_user_created", "ix_reconciliation_user_created"),
        ("explain_users_email", "create_idx_users_email", "idx_users_email"),
    ],
)
async def test_explain_sees_the_seq_scan_and_then_the_index(
    catalogue: Catalogue,
    sick_system: SickSystem,
    runner: ProbeRunner,
    check_id: str,
    action_id: str,
    index: str,
) -> None:
    runbook = runbook_named(catalogue, "db.indexes")
    check = runbook.check(check_id)
    assert check is not None and "ANALYZE" not in getattr(check.probe, "sql", "").upper()
    before = (await diagnose(runbook, {}, runner)).outcome(check_id)
    assert before is not None and before.status == "warn", before
    assert before.result.values["index_scans"] == 0
    assert action_id in {s.ref for s in (await diagnose(runbook, {}, runner)).suggestions}
    action = action_named(catalogue, "db.indexes", action_id)
    assert check_id in action.verify
    async with ActionExecutor(sick_system.load_targets()) as executor:
        result = await executor.run(action.step, {}, run_id="ix", timeout_s=60)
    assert result.status == "succeeded", result.error
    after = (await diagnose(runbook, {}, runner)).outcome(check_id)
    assert after is not None and after.status == "ok", after
    assert after.result.values["indexes_used"] == index

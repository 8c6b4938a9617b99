"""Every catalogue check with a warn or crit rule, driven red and driven green (issue #15).

One case per (check, state), generated from the catalogue, so a new check is picked up without
touching this file. Each case puts the loopback world into the state (drivers.py, pg.py), runs
the check the way the bot does — `ProbeRunner` + `run_checks` against a targets registry — and
expects crit (warn where the check has only a warn rule) for red and ok, with a value, for green.
A reachability check (`unreachable: crit`: `SELECT 1`, `PING`) is red when its target does not
answer: its red case points the target at a closed port and expects crit with the probe's error.

A check whose red (or green) state no driver can produce is listed in EXCEPTIONS (or
GREEN_EXCEPTIONS) with the reason; the case is then skipped with that reason and the coverage
table at the end of the run lists it. Nothing is left out silently: a check no driver knows and
no exception names fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from bot.demo.host import HostLayout
from bot.probes import ProbeRunner
from bot.runbooks.catalogue import load_catalogue
from bot.runbooks.engine import CheckOutcome, new_run_id, run_checks
from bot.runbooks.model import Check, Runbook
from bot.runbooks.params import bind_params
from bot.targets import Targets
from tests.runbooks.red.conftest import (
    RUNBOOKS,
    AgedDatabase,
    Coverage,
    HttpRig,
    PrivatePostgres,
    PrometheusRig,
    registry,
)
from tests.runbooks.red.drivers import (
    drive_command,
    drive_http,
    drive_prometheus,
    drive_redis,
    drive_unreachable,
)
from tests.runbooks.red.pg import Sessions, drive_postgres
from tests.runbooks.red.values import State, expected_status

CATALOGUE = load_catalogue(RUNBOOKS)
KINDS = ("prometheus", "http", "command", "redis", "postgres")

# Parameters beyond the runbook's defaults, and why.
PARAMS: dict[str, list[str]] = {
    # 0 is the documented "every idle connection"; the default (30 min) cannot be waited out here.
    "db.connections": ["idle_minutes=0"],
}

_MINUTES = "red needs a statement running for {} — longer than the whole suite may take"

# Checks whose red state no driver produces, and why.
EXCEPTIONS: dict[str, str] = {
    "incident.p0:db_stuck": _MINUTES.format("10 minutes"),
    "db.slow-queries:longest": _MINUTES.format("more than 600 s (its warn, 60 s, is within reach)"),
    "deploy.fresh:postgres": "red needs a PostgreSQL older than 15; the machine has only 15's binaries",
    "deploy.fresh:redis_version": "red needs a Redis older than 7; the machine's redis-server is 7.0",
    "dr.failover:replay_lag": (
        "red needs a standby over 60 s behind: an apply delay shows in replay_lag only once it has"
        " elapsed (over a minute), and a delayed standby on the suite's primary would turn this"
        " check's green (the max over standbys) red"
    ),
}

# Checks whose red state needs sessions over a minute old: seen on the suite's aged database
# (conftest.aged_db), run last, with the minute parameters at their minimum.
AGED: dict[str, list[str]] = {
    "db.locks:stuck": ["stuck_minutes=1"],
    "db.locks:idle_in_transaction": [],
    "db.slow-queries:over_kill_limit": ["kill_minutes=1"],
}

# PostgreSQL cases run on the suite's private primary (conftest.private_pg) unless named here:
# on its streaming standby, or on the machine's server (an empty fresh database), which has
# neither pg_stat_statements preloaded nor a standby.
SERVER: dict[str, dict[State, str]] = {
    "dr.failover:role": {"red": "standby"},
    "dr.failover:standbys": {"red": "machine"},
    "db.slow-queries:statements_available": {"red": "machine"},
}

# Checks whose green state no driver produces, and why (their red is still driven).
GREEN_EXCEPTIONS: dict[str, str] = {}

# Probe kinds whose target can be taken away (drive_unreachable): a command target is this host.
NETWORK = ("prometheus", "http", "redis", "postgres")


def threshold_checks() -> Iterator[tuple[Runbook, Check]]:
    for runbook in sorted(CATALOGUE, key=lambda r: r.id):
        for check in runbook.checks:
            if check.warn is not None or check.crit is not None:
                yield runbook, check


def cases(kind: str) -> list[Any]:
    return [
        pytest.param(runbook, check, state, id=f"{runbook.id}:{check.id}:{state}")
        for runbook, check in threshold_checks()
        if check.probe.kind == kind
        for state in ("red", "green")
        if not (state == "red" and (f"{runbook.id}:{check.id}" in AGED or check.unreachable == "crit"))
    ]


def unreachable_cases(unreachable: str) -> list[Any]:
    """Threshold checks on a network target whose `unreachable` is `crit` (their red case) or
    `unknown` (every other one: a target that is down must not turn them red)."""
    return [
        pytest.param(runbook, check, id=f"{runbook.id}:{check.id}")
        for runbook, check in threshold_checks()
        if check.unreachable == unreachable and check.probe.kind in NETWORK
    ]


def aged_cases() -> list[Any]:
    return [
        pytest.param(runbook, check, id=f"{runbook.id}:{check.id}:red")
        for runbook, check in threshold_checks()
        if f"{runbook.id}:{check.id}" in AGED
    ]


def params_for(runbook: Runbook) -> dict[str, Any]:
    positional = runbook.command.positional if runbook.command else None
    return bind_params(runbook.params, PARAMS.get(runbook.id, []), positional)


def excepted(coverage: Coverage, runbook: Runbook, check: Check, state: State) -> None:
    """Skip, with its reason, a case EXCEPTIONS or GREEN_EXCEPTIONS names."""
    key = f"{runbook.id}:{check.id}"
    reason = (EXCEPTIONS if state == "red" else GREEN_EXCEPTIONS).get(key)
    if reason is not None:
        coverage.excepted(key if state == "red" else f"{key} (green)", reason)
        pytest.skip(f"EXCEPTION {key} {state}: {reason}")


async def observe(runbook: Runbook, check: Check, params: dict[str, Any], targets: Targets) -> CheckOutcome:
    async with ProbeRunner(targets) as runner:
        [outcome] = await run_checks(runbook, [check], params, runner, new_run_id())
    return outcome


def expect(coverage: Coverage, runbook: Runbook, check: Check, state: State, outcome: CheckOutcome) -> None:
    coverage.saw(f"{runbook.id}:{check.id}", state, outcome.status)
    want = expected_status(check, state)
    assert outcome.status == want, (
        f"{runbook.id}:{check.id} driven {state} is {outcome.status}, expected {want}"
        f" ({check.threshold_text()}; value {outcome.value!r}; error {outcome.result.error!r})"
    )
    assert outcome.value is not None, "a judged state needs a value"


# --- one test per probe kind, one case per (check, state) ---------------------------------------


@pytest.mark.parametrize(("runbook", "check", "state"), cases("prometheus"))
async def test_prometheus_check(
    runbook: Runbook, check: Check, state: State, prometheus: PrometheusRig, coverage: Coverage
) -> None:
    excepted(coverage, runbook, check, state)
    params = params_for(runbook)
    drive_prometheus(prometheus, check, params, state)
    outcome = await observe(runbook, check, params, registry(prometheus=prometheus.url))
    expect(coverage, runbook, check, state, outcome)


@pytest.mark.parametrize(("runbook", "check", "state"), cases("http"))
async def test_http_check(
    runbook: Runbook, check: Check, state: State, http_api: HttpRig, coverage: Coverage
) -> None:
    excepted(coverage, runbook, check, state)
    drive_http(http_api, check, state)
    outcome = await observe(runbook, check, params_for(runbook), registry(api=http_api.url))
    expect(coverage, runbook, check, state, outcome)


@pytest.mark.parametrize(("runbook", "check", "state"), cases("command"))
async def test_command_check(
    runbook: Runbook, check: Check, state: State, host: HostLayout, coverage: Coverage
) -> None:
    excepted(coverage, runbook, check, state)
    params = params_for(runbook)
    drive_command(host, check, params, state)
    outcome = await observe(runbook, check, params, registry(host=host))
    expect(coverage, runbook, check, state, outcome)


@pytest.mark.parametrize(("runbook", "check", "state"), cases("redis"))
async def test_redis_check(
    runbook: Runbook, check: Check, state: State, cache_url: str, coverage: Coverage
) -> None:
    excepted(coverage, runbook, check, state)
    await drive_redis(cache_url, check, state)
    outcome = await observe(runbook, check, params_for(runbook), registry(cache=cache_url))
    expect(coverage, runbook, check, state, outcome)


@pytest.mark.parametrize(("runbook", "check", "state"), cases("postgres"))
async def test_postgres_check(
    runbook: Runbook,
    check: Check,
    state: State,
    private_pg: PrivatePostgres,
    request: pytest.FixtureRequest,
    coverage: Coverage,
) -> None:
    excepted(coverage, runbook, check, state)
    server = SERVER.get(f"{runbook.id}:{check.id}", {}).get(state, "primary")
    if server == "machine":
        dsn = request.getfixturevalue("database_url")
    else:
        name = request.getfixturevalue("app_db")
        if server == "standby":
            private_pg.wait_on_standby(name)
        dsn = private_pg.dsn(name, standby=server == "standby")
    params = params_for(runbook)
    sessions = Sessions(dsn)
    try:
        await drive_postgres(sessions, check, params, state)
        outcome = await observe(runbook, check, params, registry(app_db=dsn))
    finally:
        await sessions.close()
    expect(coverage, runbook, check, state, outcome)


@pytest.mark.parametrize(("runbook", "check"), aged_cases())
async def test_aged_postgres_check(
    runbook: Runbook, check: Check, aged_db: AgedDatabase, coverage: Coverage
) -> None:
    await asyncio.sleep(aged_db.remaining_s())
    positional = runbook.command.positional if runbook.command else None
    params = bind_params(runbook.params, AGED[f"{runbook.id}:{check.id}"], positional)
    outcome = await observe(runbook, check, params, registry(app_db=aged_db.dsn))
    expect(coverage, runbook, check, "red", outcome)


# --- what the generated cases rest on -----------------------------------------------------------


@pytest.mark.parametrize(("runbook", "check"), unreachable_cases("crit"))
async def test_reachability_check_is_red_when_its_target_is_down(
    runbook: Runbook, check: Check, coverage: Coverage
) -> None:
    """A `SELECT 1` or `PING` check can only return its fine value; not answering is its red."""
    outcome = await observe(runbook, check, params_for(runbook), registry(**drive_unreachable(check)))
    coverage.saw(f"{runbook.id}:{check.id}", "red", outcome.status)
    assert outcome.result.status in ("error", "timeout") and outcome.result.error, outcome.result
    assert outcome.status == "crit", f"{runbook.id}:{check.id} with its target down is {outcome.status}"
    assert outcome.reason == outcome.result.error, "the probe's error is why it is crit"
    assert outcome.value is None


@pytest.mark.parametrize(("runbook", "check"), unreachable_cases("unknown"))
async def test_unreachable_targets_are_not_ok(runbook: Runbook, check: Check) -> None:
    """Every other check with its target down measured nothing: unknown, not ok and not crit."""
    outcome = await observe(runbook, check, params_for(runbook), registry(**drive_unreachable(check)))
    assert outcome.result.status in ("error", "timeout") and outcome.result.error, outcome.result
    assert outcome.status == "unknown", f"{runbook.id}:{check.id} with its target down is {outcome.status}"
    assert outcome.reason == outcome.result.error


def test_every_threshold_check_gets_cases() -> None:
    kinds = {check.probe.kind for _, check in threshold_checks()}
    assert kinds <= set(KINDS), f"a probe kind without a red/green test: {kinds - set(KINDS)}"
    generated = sum(len(cases(kind)) for kind in KINDS) + len(aged_cases()) + len(unreachable_cases("crit"))
    assert generated == 2 * len(list(threshold_checks()))


def test_exceptions_name_checks_that_have_thresholds() -> None:
    known = {f"{runbook.id}:{check.id}" for runbook, check in threshold_checks()}
    assert set(EXCEPTIONS) <= known, set(EXCEPTIONS) - known
    assert set(GREEN_EXCEPTIONS) <= known, set(GREEN_EXCEPTIONS) - known
    assert set(AGED) <= known, set(AGED) - known
    assert not set(AGED) & set(EXCEPTIONS)
    reachability = {
        f"{runbook.id}:{check.id}" for runbook, check in threshold_checks() if check.unreachable == "crit"
    }
    assert not reachability & (set(EXCEPTIONS) | set(AGED)), "a reachability check's red is its target down"
    assert set(SERVER) <= known, set(SERVER) - known

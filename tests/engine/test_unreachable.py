"""`unreachable: crit`: a reachability check (`SELECT 1`, `PING`) whose probe gets no answer is crit,
with the probe's error as the reason; every other check stays unknown (seed 000, "P0: Database
connection fails")."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from bot.probes import ProbeResult, ProbeRunner
from bot.render.diagnosis import check_line, full_output
from bot.runbooks.engine import diagnose, judge
from bot.runbooks.model import Check, Runbook
from bot.targets import Targets
from tests.conftest import free_port

CRIT_UNLESS_ONE = {"op": "!=", "value": 1}


def check(check_id: str = "database", **extra: Any) -> Check:
    return Check.model_validate(
        {
            "id": check_id,
            "title": f"{check_id} answers SELECT 1",
            "probe": {"kind": "postgres", "target": "app_db", "sql": "SELECT 1 AS ok"},
            "value": "ok",
            "crit": CRIT_UNLESS_ONE,
            **extra,
        }
    )


def failed(status: str, error: str | None) -> ProbeResult:
    return ProbeResult(status=status, values={}, latency_ms=3.0, error=error)  # type: ignore[arg-type]


def found(**values: Any) -> ProbeResult:
    return ProbeResult(status="ok", values=values, latency_ms=1.0)


REFUSED = "cannot connect: Connection refused"


@pytest.mark.parametrize(("status", "error"), [("error", REFUSED), ("timeout", "timed out after 5s")])
def test_a_failed_probe_is_crit_with_its_error_on_a_reachability_check(status: str, error: str) -> None:
    outcome = judge(check(unreachable="crit"), failed(status, error))
    assert (outcome.status, outcome.reason, outcome.value) == ("crit", error, None)


@pytest.mark.parametrize(("status", "error"), [("error", REFUSED), ("timeout", "timed out after 5s")])
def test_the_same_failure_is_unknown_on_an_ordinary_check(status: str, error: str) -> None:
    ordinary = check()
    assert ordinary.unreachable == "unknown", "unknown is the default"
    outcome = judge(ordinary, failed(status, error))
    assert (outcome.status, outcome.reason) == ("unknown", error)


def test_a_failed_probe_without_an_error_still_says_why() -> None:
    outcome = judge(check(unreachable="crit"), failed("timeout", None))
    assert (outcome.status, outcome.reason) == ("crit", "timed out")


def test_a_probe_that_answered_is_judged_by_the_rules_as_before() -> None:
    reachability = check(unreachable="crit")
    assert judge(reachability, found(ok=1)).status == "ok"
    assert judge(reachability, found(ok=0)).status == "crit"


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({}, "the probe returned no value named ok"),
        ({"ok": None}, "no value"),
        ({"ok": "yes"}, "not a number: 'yes'"),
    ],
)
def test_a_value_that_is_missing_stays_unknown_even_on_a_reachability_check(
    values: dict[str, Any], reason: str
) -> None:
    """It answered: `unreachable` is about not answering, not about an answer that says nothing."""
    outcome = judge(check(unreachable="crit"), found(**values))
    assert (outcome.status, outcome.reason) == ("unknown", reason)


def test_a_probe_that_never_ran_stays_unknown_even_on_a_reachability_check() -> None:
    """A spec error or a failure of the engine says nothing about the target."""
    outcome = judge(check(unreachable="crit"), failed("error", "unknown target 'app_db'"), probe_ran=False)
    assert (outcome.status, outcome.reason) == ("unknown", "unknown target 'app_db'")


@pytest.mark.parametrize(
    "rules",
    [{"crit": None}, {"crit": None, "warn": {"op": "!=", "value": 1}}],
    ids=["no rules", "warn only"],
)
def test_unreachable_crit_needs_a_crit_rule(rules: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="`unreachable: crit` needs a `crit` rule"):
        check(unreachable="crit", **rules)


def test_unreachable_is_unknown_or_crit() -> None:
    with pytest.raises(ValidationError):
        check(unreachable="warn")


def runbook(checks: list[Check]) -> Runbook:
    return Runbook.model_validate(
        {
            "id": "test.unreachable",
            "title": "Database down",
            "summary": "a database that does not answer",
            "source": {"seed": "000_e2e647c03db5623f.txt", "section": "P0: Database connection fails"},
            "checks": [c.model_dump(exclude_unset=True) for c in checks],
        }
    )


async def test_a_database_that_refuses_connections_is_a_critical_diagnosis() -> None:
    """Against a real closed port: the reachability check is crit and says why, a sibling check on
    the same dead database is unknown, the diagnosis is crit, and the card shows the reason."""
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    targets = Targets.parse(
        {"targets": {"app_db": {"kind": "postgres", "dsn": closed, "connect_timeout": 2}}}
    )
    sessions = Check.model_validate(
        {
            "id": "sessions",
            "title": "Sessions",
            "probe": {
                "kind": "postgres",
                "target": "app_db",
                "sql": "SELECT count(*) AS n FROM pg_stat_activity",
            },
            "value": "n",
            "crit": {"op": ">", "value": 90},
        }
    )
    book = runbook([check(unreachable="crit"), sessions])
    async with ProbeRunner(targets) as runner:
        diagnosis = await diagnose(book, {}, runner)
    database, counted = diagnosis.outcome("database"), diagnosis.outcome("sessions")
    assert database is not None and counted is not None
    assert database.status == "crit" and database.reason.startswith("cannot connect"), database
    assert counted.status == "unknown" and counted.reason == counted.result.error
    assert diagnosis.overall == "crit"
    assert check_line(database).startswith(f"🔴 CRITICAL · *database answers SELECT 1* — {database.reason}")
    assert f"did not answer: {database.reason}" in full_output(diagnosis, book)


async def test_a_target_the_bot_does_not_have_is_unknown_not_crit() -> None:
    """A spec the registry cannot run (no such target) is our problem, not the database's."""
    async with ProbeRunner(Targets.parse({"targets": {}})) as runner:
        diagnosis = await diagnose(runbook([check(unreachable="crit")]), {}, runner)
    [outcome] = diagnosis.checks
    assert outcome.status == "unknown" and "app_db" in outcome.reason, outcome

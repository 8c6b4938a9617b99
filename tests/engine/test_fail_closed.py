"""Checks that cannot lie (#15): a check with thresholds that measured nothing is UNKNOWN with a
reason, the diagnosis is not OK, and the card says so in words — against real servers: the demo
Prometheus, PostgreSQL, and a port nobody listens on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from bot.demo import ApiState, build_prometheus_app
from bot.probes import ProbeRunner
from bot.render.diagnosis import diagnosis_blocks, diagnosis_text, full_output
from bot.runbooks.engine import Diagnosis, diagnose, worst
from bot.runbooks.model import Runbook
from bot.targets import Targets
from tests.conftest import free_port

ABSENT = 'sum(rate(checkout_payments_declined_total{service="{service}"}[5m]))'
PRESENT = 'sum(rate(http_requests_total{service="{service}",status=~"5.."}[5m]))'


def runbook(checks: list[dict[str, Any]], **extra: Any) -> Runbook:
    return Runbook.model_validate(
        {
            "id": "test.fail_closed",
            "title": "Fail closed",
            "summary": "checks that measure nothing must not read as fine",
            "source": {"seed": "000_e2e647c03db5623f.txt", "section": "Database Connection Pool Leaks"},
            "checks": checks,
            **extra,
        }
    )


def texts(node: Any) -> list[str]:
    """Every piece of text a person sees in some blocks, in order."""
    if isinstance(node, list):
        return [text for item in node for text in texts(item)]
    if not isinstance(node, dict):
        return []
    own = [node["text"]] if isinstance(node.get("text"), str) else []
    return own + [text for key, value in node.items() if key != "text" or not own for text in texts(value)]


def card_text(diagnosis: Diagnosis, book: Runbook) -> str:
    blocks, _ = diagnosis_blocks(diagnosis, book)
    return "\n".join(texts(blocks))


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[web.Application], Awaitable[str]]]:
    started: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        app_runner = web.AppRunner(app, shutdown_timeout=0.1)
        await app_runner.setup()
        port = free_port()
        await web.TCPSite(app_runner, "127.0.0.1", port).start()
        started.append(app_runner)
        return f"http://127.0.0.1:{port}"

    yield start
    for app_runner in started:
        await app_runner.cleanup()


async def test_an_absent_prometheus_series_is_unknown_with_the_query(
    serve: Callable[[web.Application], Awaitable[str]],
) -> None:
    base_url = await serve(build_prometheus_app(ApiState(sick=False)))
    targets = Targets.parse({"targets": {"prometheus": {"kind": "prometheus", "base_url": base_url}}})
    book = runbook(
        [
            {
                "id": "errors",
                "title": "5xx rate",
                "probe": {"kind": "prometheus", "target": "prometheus", "query": PRESENT},
                "value": "value",
                "warn": {"op": ">", "value": 1},
                "crit": {"op": ">", "value": 5},
            },
            {
                "id": "declines",
                "title": "Payment declines per second",
                "probe": {"kind": "prometheus", "target": "prometheus", "query": ABSENT},
                "value": "value",
                "warn": {"op": ">", "value": 1},
                "crit": {"op": ">", "value": 5},
            },
        ],
        params=[{"name": "service", "type": "identifier", "allowed": ["checkout"], "default": "checkout"}],
    )
    async with ProbeRunner(targets) as runner:
        diagnosis = await diagnose(book, {"service": "checkout"}, runner)
    errors, declines = diagnosis.checks
    assert (errors.status, errors.value) == ("ok", 0.02), "the healthy demo answers the 5xx query"
    assert declines.result.status == "ok", "an empty vector is an answer, not a probe error"
    assert declines.status == "unknown"
    sent = ABSENT.replace("{service}", "checkout")
    assert declines.reason == f"no series for `{sent}`"
    assert diagnosis.overall == "unknown"
    card = card_text(diagnosis, book)
    assert "⚪ Fail closed — UNKNOWN" in card
    assert f"⚪ UNKNOWN · *Payment declines per second* — no series for `{sent}`" in card
    assert "🟢 OK · *5xx rate* — *0.02*" in card
    assert "*Could not see:* Payment declines per second" in card
    assert diagnosis_text(diagnosis) == "⚪ Fail closed: UNKNOWN"


async def test_a_probe_that_cannot_reach_its_target_is_unknown_with_its_error(app_db_url: str) -> None:
    closed = free_port()
    targets = Targets.parse(
        {
            "targets": {
                "app_db": {"kind": "postgres", "dsn": app_db_url},
                "replica": {"kind": "postgres", "dsn": f"postgresql://postgres@127.0.0.1:{closed}/x"},
            }
        }
    )
    book = runbook(
        [
            {
                "id": "primary",
                "title": "Primary connections",
                "probe": {"kind": "postgres", "target": "app_db", "sql": "SELECT 3 AS n"},
                "value": "n",
                "warn": {"op": ">", "value": 2},
            },
            {
                "id": "replica",
                "title": "Replica lag",
                "probe": {"kind": "postgres", "target": "replica", "sql": "SELECT 0 AS lag"},
                "value": "lag",
                "crit": {"op": ">", "value": 30},
                "unit": "s",
            },
        ]
    )
    async with ProbeRunner(targets) as runner:
        diagnosis = await diagnose(book, {}, runner)
    primary, replica = diagnosis.checks
    assert primary.status == "warn"
    assert replica.status == "unknown"
    assert replica.result.status == "error"
    assert "Connection refused" in replica.reason
    assert replica.reason == replica.result.error
    assert diagnosis.overall == "unknown", "unknown outranks warn: not looking is worse than a bit high"
    card = card_text(diagnosis, book)
    assert "⚪ Fail closed — UNKNOWN" in card
    assert f"⚪ UNKNOWN · *Replica lag* — {replica.reason}" in card
    assert "_(critical if > 30 s)_" in card
    assert "🟡 WARNING · *Primary connections* — *3*" in card


async def test_a_value_that_is_not_a_number_is_unknown_not_ok(app_db_url: str) -> None:
    targets = Targets.parse({"targets": {"app_db": {"kind": "postgres", "dsn": app_db_url}}})
    book = runbook(
        [
            {
                "id": "waiting",
                "title": "Queries waiting on locks",
                "probe": {"kind": "postgres", "target": "app_db", "sql": "SELECT 'abc' AS n"},
                "value": "n",
                "warn": {"op": ">", "value": 5},
                "crit": {"op": ">", "value": 20},
            },
            {
                "id": "replication",
                "title": "Replication running",
                "probe": {"kind": "postgres", "target": "app_db", "sql": "SELECT false AS running"},
                "value": "running",
                "crit": {"op": "==", "value": False},
            },
        ]
    )
    async with ProbeRunner(targets) as runner:
        diagnosis = await diagnose(book, {}, runner)
    waiting, replication = diagnosis.checks
    assert (waiting.status, waiting.value, waiting.reason) == ("unknown", "abc", "not a number: 'abc'")
    assert replication.status == "crit", "a yes/no value compared with == false is judged, not refused"
    assert diagnosis.overall == "crit", "crit still outranks unknown"
    card = card_text(diagnosis, book)
    assert "⚪ UNKNOWN · *Queries waiting on locks* — not a number: 'abc'" in card
    assert "🔴 CRITICAL · *Replication running* — *no*  _(critical if no)_" in card
    assert "False" not in card and "false" not in card
    assert "*Could not see:* Queries waiting on locks" in card
    assert "could not measure: not a number: 'abc'" in full_output(diagnosis, book)


def test_numbers_that_are_not_numbers_and_rules_that_cannot_compare_fail_closed() -> None:
    from bot.probes import ProbeResult
    from bot.runbooks.engine import judge
    from bot.runbooks.model import Check

    def check(**rules: Any) -> Check:
        probe = {"kind": "postgres", "target": "app_db", "sql": "SELECT 1 AS n"}
        return Check.model_validate({"id": "c", "title": "check c", "probe": probe, "value": "n", **rules})

    def found(value: Any) -> ProbeResult:
        return ProbeResult(status="ok", values={"n": value}, latency_ms=1.0)

    numeric = check(warn={"op": ">", "value": 10})
    for value, reason in [
        ("abc", "not a number: 'abc'"),
        ("[1,2]", "not a number: '[1,2]'"),  # a list, as probes hand containers over (compact JSON)
        ('{"a":1}', "not a number: '{\"a\":1}'"),
        (True, "not a number: True"),  # a yes/no value has no size
        (None, "no value"),
    ]:
        outcome = judge(numeric, found(value))
        assert (outcome.status, outcome.reason) == ("unknown", reason), value
    assert numeric.judge(["a", "list"]) == "unknown", "the model fails closed for any object"
    assert numeric.judge(float("nan")) == "unknown"
    yes_no = check(crit={"op": "!=", "value": True})
    assert [judge(yes_no, found(v)).status for v in (True, False)] == ["ok", "crit"]
    assert judge(yes_no, found("maybe")).reason == "not yes or no: 'maybe'"
    assert yes_no.threshold_text() == "critical if no"
    assert check(warn={"op": "==", "value": True}).threshold_text() == "warning if yes"
    assert check(warn={"op": ">=", "value": 3}, unit="s").threshold_text() == "warning if ≥ 3 s"
    no_rules = Check.model_validate(
        {"id": "c", "title": "check c", "probe": {"kind": "postgres", "target": "app_db", "sql": "SELECT 1"}}
    )
    assert judge(no_rules, found(None)).status == "ok", (
        "a check with nothing to judge shows, it does not judge"
    )


def test_overall_is_the_worst_with_unknown_between_warn_and_crit() -> None:
    assert worst([]) == "ok", "a manual-only runbook claims nothing"
    assert worst(["ok", "warn"]) == "warn"
    assert worst(["ok", "warn", "unknown"]) == "unknown"
    assert worst(["unknown", "crit", "warn"]) == "crit"

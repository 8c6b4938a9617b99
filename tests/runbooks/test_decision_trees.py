"""Decision trees in `next`: the condition model, and the seed 004 trees walked on real servers.

Runbook 4 (perf.diagnose) is driven into each branch of its step 6 tree with the real parts the
checks read: a Prometheus answering the P95 the test chooses, Redis hits and misses made with
real GETs on a private redis-server, active database queries as real sessions in `pg_sleep`.
Each test asserts that branch's advice and nothing else. Runbook 3 (health.daily) and
Runbook 8 (service.restart) are checked for the links the seed gives each failing step.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from pydantic import ValidationError

from bot.demo import SickSystem
from bot.demo.prometheus import answer
from bot.probes import ProbeRunner
from bot.render.diagnosis import diagnosis_blocks, full_output
from bot.runbooks.catalogue import Catalogue, CatalogueError, load_catalogue
from bot.runbooks.engine import Diagnosis, diagnose
from bot.runbooks.model import Runbook, When
from tests.runbooks.conftest import SEEDS

# --- the condition model --------------------------------------------------------------------------


def book_data(next_steps: list[dict[str, Any]]) -> dict[str, Any]:
    """A runbook with two checks: `n` judges a value, `up` only runs."""
    return {
        "id": "test.tree",
        "title": "Tree test",
        "summary": "conditions for the decision-tree tests",
        "source": {"seed": "004_64a8611e63a2df9d.txt", "section": "Runbook 4: Performance Diagnosis"},
        "checks": [
            {
                "id": "n",
                "title": "a number",
                "probe": {"kind": "postgres", "target": "app_db", "sql": "SELECT 1 AS n"},
                "value": "n",
                "warn": {"op": ">", "value": 5},
                "crit": {"op": ">", "value": 10},
            },
            {
                "id": "up",
                "title": "answers",
                "probe": {"kind": "postgres", "target": "app_db", "sql": "SELECT 1 AS one"},
            },
        ],
        "next": next_steps,
    }


def book(next_steps: list[dict[str, Any]]) -> Runbook:
    return Runbook.model_validate(book_data(next_steps))


def when(condition: dict[str, Any]) -> When:
    return When.model_validate(condition)


def test_the_single_check_form_still_works() -> None:
    condition = when({"check": "n", "status": ["warn", "crit"]})
    assert condition.holds({"n": ("warn", 7)}, "warn")
    assert not condition.holds({"n": ("ok", 1)}, "ok")
    overall = when({"status": ["crit"]})
    assert overall.holds({"n": ("ok", 1)}, "crit")
    assert not overall.holds({"n": ("crit", 11)}, "warn")


def test_error_is_read_as_unknown_in_a_condition() -> None:
    condition = when({"check": "n", "status": ["error"]})
    assert condition.status == ["unknown"]
    assert condition.holds({"n": ("unknown", None)}, "unknown")


def test_a_value_is_compared_like_a_threshold() -> None:
    low = when({"check": "n", "op": "<", "value": 60})
    assert low.holds({"n": ("crit", 20.0)}, "crit")
    assert not low.holds({"n": ("ok", 90.0)}, "ok")
    down = when({"check": "n", "op": "==", "value": False})
    assert down.holds({"n": ("crit", False)}, "crit")
    assert not down.holds({"n": ("ok", True)}, "ok")


def test_a_comparison_never_holds_for_a_check_that_measured_nothing() -> None:
    low = when({"check": "n", "op": "<", "value": 60})
    assert not low.holds({"n": ("ok", None)}, "ok"), "no lookups yet is no hit rate, not a low one"
    assert not low.holds({"n": ("unknown", 0)}, "unknown")
    assert not low.holds({}, "ok"), "a check that did not run"
    down = when({"check": "n", "op": "==", "value": False})
    assert not down.holds({"n": ("unknown", None)}, "unknown"), "None is not False"


def test_all_and_any_combine_conditions() -> None:
    middle = when(
        {
            "all": [
                {"check": "n", "status": ["warn"]},
                {"any": [{"check": "up", "status": ["unknown"]}, {"check": "n", "op": ">=", "value": 8}]},
            ]
        }
    )
    assert middle.holds({"n": ("warn", 9), "up": ("ok", None)}, "warn")
    assert middle.holds({"n": ("warn", 6), "up": ("unknown", None)}, "unknown")
    assert not middle.holds({"n": ("warn", 6), "up": ("ok", None)}, "warn")
    assert not middle.holds({"n": ("crit", 12), "up": ("unknown", None)}, "crit")


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"check": "n", "status": ["ok"], "op": "<", "value": 1}, "exactly one of"),
        ({"check": "n", "op": "<"}, "needs check, op and value"),
        ({"op": "<", "value": 1}, "needs check, op and value"),
        ({"check": "n", "all": [{"check": "n", "status": ["ok"]}]}, "not a check"),
        ({"all": []}, "at least 1"),
        ({"check": "n"}, "exactly one of"),
        ({"check": "n", "status": ["ok"], "not": {"check": "n", "status": ["crit"]}}, "Extra inputs"),
    ],
)
def test_a_malformed_condition_is_refused(condition: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        When.model_validate(condition)


@pytest.mark.parametrize(
    "condition",
    [
        {"check": "nope", "status": ["crit"]},
        {"all": [{"check": "n", "status": ["warn"]}, {"any": [{"check": "nope", "op": ">", "value": 1}]}]},
    ],
)
def test_a_condition_naming_an_unknown_check_is_refused_at_load(condition: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=r"next\[0\]: unknown check nope"):
        book([{"when": condition, "suggest": ["runbook:db.locks"]}])


def test_comparing_a_check_without_a_value_is_refused_at_load() -> None:
    with pytest.raises(ValidationError, match="check up has no `value` to compare"):
        book([{"when": {"check": "up", "op": "==", "value": 1}, "note": "never"}])


def test_a_step_must_suggest_or_say_something() -> None:
    with pytest.raises(ValidationError, match="needs a suggestion or a note"):
        book([{"when": {"check": "n", "status": ["ok"]}}])


def test_the_catalogue_names_the_file_with_a_bad_check_reference(tmp_path: Path) -> None:
    condition = {"all": [{"check": "n", "status": ["warn"]}, {"check": "gone", "status": ["ok"]}]}
    runbook = book_data([{"when": condition, "note": "x"}])
    (tmp_path / "tree.yml").write_text(yaml.safe_dump(runbook), "utf-8")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(tmp_path)
    assert "tree.yml" in str(caught.value)
    assert "unknown check gone" in str(caught.value)


def test_a_matching_stop_step_ends_the_walk() -> None:
    steps = [
        {"suggest": ["runbook:logs.tail"], "note": "always"},
        {"when": {"check": "n", "status": ["warn", "crit"]}, "suggest": ["runbook:db.locks"], "stop": True},
        {"when": {"check": "n", "op": ">", "value": 5}, "suggest": ["runbook:db.activity"], "stop": True},
        {"when": {"check": "n", "status": ["warn"]}, "suggest": ["runbook:db.pool"]},
    ]
    tree = book(steps)
    matched = tree.follow_ups({"n": ("warn", 7)}, "warn")
    assert [s.suggest for s in matched] == [["runbook:logs.tail"], ["runbook:db.locks"]]
    # A stop step that does not hold stops nothing.
    assert [s.suggest for s in tree.follow_ups({"n": ("ok", 1)}, "ok")] == [["runbook:logs.tail"]]


def test_without_stop_every_matching_step_counts() -> None:
    steps = [
        {"when": {"check": "n", "status": ["warn", "crit"]}, "suggest": ["runbook:db.locks"]},
        {"when": {"check": "n", "op": ">", "value": 5}, "suggest": ["runbook:db.activity"]},
    ]
    matched = book(steps).follow_ups({"n": ("warn", 7)}, "warn")
    assert [s.suggest for s in matched] == [["runbook:db.locks"], ["runbook:db.activity"]]


def test_the_exported_schema_knows_the_new_shapes() -> None:
    schema = Runbook.model_json_schema()
    when_schema = schema["$defs"]["When"]["properties"]
    assert {"check", "status", "op", "value", "all", "any"} <= set(when_schema)
    assert "stop" in schema["$defs"]["NextStep"]["properties"]


# --- seed 004 Runbook 4, step 6, on real servers ---------------------------------------------------

CRITICAL = "P95 over 100 ms: CRITICAL — emergency restart (runbook 8)."
PASS = "P95 under 50 ms: PASS — no action, continue monitoring."
CACHE_LOW = "P95 50–100 ms, cache hit rate under 60 %: cache fix (runbook 9)."
CACHE_MIDDLE = (
    "P95 50–100 ms, cache hit rate 60–80 %: the seed's tree says nothing here. Not high enough to "
    "rule the cache out, so look at it first (runbook 9, read-only) before scaling anything."
)
DB_HIGH = (
    "P95 50–100 ms, cache fine (> 80 %), database high load (> 10 active): "
    "scale the database (add read replicas)."
)
DB_NORMAL = "P95 50–100 ms, cache fine (> 80 %), database normal (≤ 10 active): scale the API instances."
ALL_NOTES = {CRITICAL, PASS, CACHE_LOW, CACHE_MIDDLE, DB_HIGH, DB_NORMAL}


@asynccontextmanager
async def prometheus_with_p95(p95: float | None) -> AsyncIterator[str]:
    """A Prometheus query API whose P95 is `p95` (None: no series); other queries as the demo's."""

    async def query(request: web.Request) -> web.Response:
        text = request.query.get("query", "")
        if "histogram_quantile(0.95" in "".join(text.split()):
            found = [] if p95 is None else [({}, p95)]
        else:
            found = answer(text, sick=False)
        result = [{"metric": labels, "value": [0, repr(float(value))]} for labels, value in found]
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def perf_system(
    database_url: str, redis_url: str, workdir: Path, *, p95: float | None
) -> AsyncIterator[tuple[SickSystem, ProbeRunner]]:
    """The demo system with its Prometheus replaced by one serving `p95`."""
    async with (
        SickSystem.running(postgres_dsn=database_url, redis_url=redis_url, workdir=workdir) as system,
        prometheus_with_p95(p95) as prometheus_url,
    ):
        document = system.targets_document()
        document["targets"]["prometheus"]["base_url"] = prometheus_url
        system.targets_file.write_text(yaml.safe_dump(document, sort_keys=False), "utf-8")
        async with ProbeRunner(system.load_targets()) as runner:
            yield system, runner


def advice(runbook: Runbook, diagnosis: Diagnosis) -> tuple[list[tuple[str, str]], list[str]]:
    """(suggestions with their notes, notes of every step that applied — note-only steps included)."""
    observed = {o.check_id: (o.status, o.value) for o in diagnosis.checks}
    notes = [step.note for step in runbook.follow_ups(observed, diagnosis.overall)]
    return [(f"{s.kind}:{s.ref}", s.note) for s in diagnosis.suggestions], notes


def measured(diagnosis: Diagnosis, check_id: str) -> tuple[str, Any]:
    outcome = diagnosis.outcome(check_id)
    assert outcome is not None
    return str(outcome.status), outcome.value


@pytest.fixture
def perf(catalogue: Catalogue) -> Runbook:
    runbook = catalogue.get("perf.diagnose")
    assert runbook is not None
    return runbook


async def busy_database(system: SickSystem, sessions: int) -> None:
    for _ in range(sessions):
        await system.start_slow_query(60)


async def test_p95_over_100ms_is_critical_whatever_else_is_wrong(
    perf: Runbook, database_url: str, fresh_redis_url: str, tmp_path: Path
) -> None:
    async with perf_system(database_url, fresh_redis_url, tmp_path, p95=2.4) as (system, runner):
        await system.lower_hit_rate(hits=40, misses=160)
        await busy_database(system, 12)
        diagnosis = await diagnose(perf, {}, runner)
    assert measured(diagnosis, "p95") == ("crit", 2.4)
    assert measured(diagnosis, "cache_hit_rate") == ("crit", 20.0), "the cache-fix branch's state too"
    assert measured(diagnosis, "db_active")[0] == "crit", "and the scale-database branch's"
    assert advice(perf, diagnosis) == ([("runbook:service.restart", CRITICAL)], [CRITICAL])


async def test_p95_under_50ms_passes_with_no_action_even_with_a_cold_cache(
    perf: Runbook, database_url: str, fresh_redis_url: str, tmp_path: Path
) -> None:
    async with perf_system(database_url, fresh_redis_url, tmp_path, p95=0.04) as (system, runner):
        await system.lower_hit_rate(hits=40, misses=160)
        diagnosis = await diagnose(perf, {}, runner)
    assert measured(diagnosis, "p95") == ("ok", 0.04)
    assert measured(diagnosis, "cache_hit_rate") == ("crit", 20.0)
    assert advice(perf, diagnosis) == ([], [PASS])
    # Advice without a button still reaches the person: on the card and in the thread's file.
    assert diagnosis.notes == [PASS]
    blocks, _ = diagnosis_blocks(diagnosis, perf)
    assert PASS in str(blocks)
    assert PASS in full_output(diagnosis, perf)


async def test_p95_50_to_100ms_with_hit_rate_under_60_is_the_cache_fix(
    perf: Runbook, database_url: str, fresh_redis_url: str, tmp_path: Path
) -> None:
    async with perf_system(database_url, fresh_redis_url, tmp_path, p95=0.07) as (system, runner):
        await system.lower_hit_rate(hits=40, misses=160)
        diagnosis = await diagnose(perf, {}, runner)
    assert measured(diagnosis, "p95") == ("warn", 0.07)
    assert measured(diagnosis, "cache_hit_rate") == ("crit", 20.0)
    assert advice(perf, diagnosis) == ([("runbook:cache.stats", CACHE_LOW)], [CACHE_LOW])


async def test_p95_50_to_100ms_with_hit_rate_60_to_80_looks_at_the_cache_first(
    perf: Runbook, database_url: str, fresh_redis_url: str, tmp_path: Path
) -> None:
    async with perf_system(database_url, fresh_redis_url, tmp_path, p95=0.07) as (system, runner):
        await system.lower_hit_rate(hits=70, misses=30)
        await busy_database(system, 12)
        diagnosis = await diagnose(perf, {}, runner)
    assert measured(diagnosis, "cache_hit_rate") == ("warn", 70.0)
    assert measured(diagnosis, "db_active")[0] == "crit", "a busy database does not make it a scaling case"
    assert advice(perf, diagnosis) == ([("runbook:cache.stats", CACHE_MIDDLE)], [CACHE_MIDDLE])


async def test_p95_50_to_100ms_good_cache_and_busy_database_scales_the_database(
    perf: Runbook, database_url: str, fresh_redis_url: str, tmp_path: Path
) -> None:
    async with perf_system(database_url, fresh_redis_url, tmp_path, p95=0.07) as (system, runner):
        await system.lower_hit_rate(hits=90, misses=10)
        await busy_database(system, 12)
        diagnosis = await diagnose(perf, {}, runner)
    assert measured(diagnosis, "cache_hit_rate") == ("ok", 90.0)
    status, active = measured(diagnosis, "db_active")
    assert status == "crit" and active >= 12
    assert advice(perf, diagnosis) == ([("runbook:service.scale", DB_HIGH)], [DB_HIGH])


async def test_p95_50_to_100ms_good_cache_and_normal_database_scales_the_api(
    perf: Runbook, database_url: str, fresh_redis_url: str, tmp_path: Path
) -> None:
    async with perf_system(database_url, fresh_redis_url, tmp_path, p95=0.07) as (system, runner):
        await system.lower_hit_rate(hits=90, misses=10)
        diagnosis = await diagnose(perf, {}, runner)
    assert measured(diagnosis, "cache_hit_rate") == ("ok", 90.0)
    assert measured(diagnosis, "db_active")[0] in ("ok", "warn")
    assert advice(perf, diagnosis) == ([("runbook:service.scale", DB_NORMAL)], [DB_NORMAL])


async def test_no_advice_when_a_deciding_value_was_not_measured(
    perf: Runbook, database_url: str, fresh_redis_url: str, tmp_path: Path
) -> None:
    # A fresh Redis has served no lookups: it has no hit rate, so neither "low" nor "high" holds.
    async with perf_system(database_url, fresh_redis_url, tmp_path, p95=0.07) as (_, runner):
        diagnosis = await diagnose(perf, {}, runner)
    assert measured(diagnosis, "cache_hit_rate")[1] is None
    assert advice(perf, diagnosis) == ([], [])
    # Prometheus without the latency series: no P95 is not a pass.
    async with perf_system(database_url, fresh_redis_url, tmp_path / "2", p95=None) as (system, runner):
        await system.lower_hit_rate(hits=90, misses=10)
        diagnosis = await diagnose(perf, {}, runner)
    assert measured(diagnosis, "p95")[1] is None
    assert advice(perf, diagnosis) == ([], [])


def test_every_runbook_4_note_belongs_to_one_leaf(perf: Runbook) -> None:
    assert {step.note for step in perf.next} == ALL_NOTES
    assert all(step.stop for step in perf.next), "every leaf ends the walk: one piece of advice"


# --- seed 004 Runbook 3 and Runbook 8 links --------------------------------------------------------

# Runbook 3's steps, the daily checks that measure each, and the step's "Action if Failed".
DAILY_STEPS = {
    1: (["services"], 8),
    2: (["response_time", "health_status"], 4),
    3: (["errors"], 6),
    4: (["cache_hit_rate"], 9),
    5: (["database"], 10),
}
# Seed 004 runbook number → the runbook that transcribes it (runbooks/README.md).
TRANSCRIBED = {
    4: "perf.diagnose",
    6: "api.errors",
    8: "service.restart",
    9: "cache.stats",
    10: "db.troubleshoot",
}
TRANSCRIBED[12] = "dr.recovery"


def _seed_004() -> str:
    path = SEEDS / "004_64a8611e63a2df9d.txt"
    if not path.is_file():
        pytest.skip("seed 004 not present")
    return path.read_text("utf-8")


def test_the_step_table_is_the_seeds() -> None:
    text = _seed_004()
    runbook_3 = text[text.index("### Runbook 3:") : text.index("### Runbook 4:")]
    actions = [int(n) for n in re.findall(r"Action if Failed\*\*: Run Runbook (\d+)", runbook_3)]
    assert actions == [runbook for _, runbook in DAILY_STEPS.values()]
    runbook_8 = text[text.index("### Runbook 8:") : text.index("### Runbook 9:")]
    assert "Go to Runbook 12 (Full System Recovery)" in runbook_8


def test_the_runbook_numbers_map_as_the_readme_says(catalogue: Catalogue) -> None:
    readme = (Path(__file__).resolve().parents[2] / "runbooks" / "README.md").read_text("utf-8")
    for number, runbook_id in TRANSCRIBED.items():
        row = re.search(rf"^\| 004 \| Runbook {number}: [^|]+\| ([a-z.-]+)", readme, re.M)
        assert row is not None and row.group(1) == runbook_id, number
        assert catalogue.get(runbook_id) is not None


@pytest.mark.parametrize("status", ["warn", "crit", "unknown"])
@pytest.mark.parametrize("step", sorted(DAILY_STEPS))
def test_each_failing_daily_step_links_to_its_seed_runbook(
    catalogue: Catalogue, step: int, status: str
) -> None:
    daily = catalogue.get("health.daily")
    assert daily is not None
    assert sorted(c.id for c in daily.checks) == sorted(c for cs, _ in DAILY_STEPS.values() for c in cs)
    checks, runbook_number = DAILY_STEPS[step]
    for failing in checks:
        observed = {c.id: ("ok", 1) for c in daily.checks} | {failing: (status, None)}
        suggested = [ref for s in daily.follow_ups(observed, status) for ref in s.suggest]
        assert suggested == [f"runbook:{TRANSCRIBED[runbook_number]}"], failing
    assert daily.follow_ups({c.id: ("ok", 1) for c in daily.checks}, "ok") == []


async def test_the_sick_system_gets_each_failing_steps_runbook(
    catalogue: Catalogue, database_url: str, fresh_redis_url: str, tmp_path: Path
) -> None:
    daily = catalogue.get("health.daily")
    assert daily is not None
    async with SickSystem.running(
        postgres_dsn=database_url, redis_url=fresh_redis_url, workdir=tmp_path / "demo"
    ) as system:
        await system.lower_hit_rate(hits=40, misses=160)
        async with ProbeRunner(system.load_targets()) as runner:
            diagnosis = await diagnose(daily, {}, runner)
    failing = [o.check_id for o in diagnosis.checks if o.status != "ok"]
    assert {"health_status", "errors", "cache_hit_rate"} <= set(failing)
    expected: list[str] = []
    for checks, number in DAILY_STEPS.values():
        if set(checks) & set(failing):
            expected.append(TRANSCRIBED[number])
    assert [s.ref for s in diagnosis.suggestions] == expected


async def test_a_restart_that_leaves_health_red_leads_to_full_recovery(
    catalogue: Catalogue, sick_system: SickSystem, runner: ProbeRunner
) -> None:
    restart = catalogue.get("service.restart")
    assert restart is not None
    sick = await diagnose(restart, {"service": "api"}, runner)
    assert measured(sick, "health")[0] == "crit"
    assert [(s.kind, s.ref) for s in sick.suggestions] == [("runbook", TRANSCRIBED[12])]
    assert "runbook 12" in sick.suggestions[0].note
    sick_system.make_healthy()
    healthy = await diagnose(restart, {"service": "api"}, runner)
    assert measured(healthy, "health")[0] == "ok"
    assert healthy.suggestions == []

"""What runbooks may show: their data class, and the load-time refusal of `SELECT *` in checks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from bot.runbooks.catalogue import CatalogueError, load_catalogue, select_star
from bot.runbooks.model import Runbook
from tests.runbooks.conftest import RUNBOOKS

STAR_SPELLINGS = [
    "SELECT * FROM sessions",
    "select\n\t*\nfrom sessions",
    "SELECT DISTINCT * FROM sessions",
    "select distinct on (user_id) * from sessions",
    "SELECT ALL * FROM sessions",
    "SELECT s.* FROM sessions s",
    "SELECT s . * FROM sessions s",
    "SELECT id, * FROM sessions",
    "EXPLAIN (FORMAT JSON) SELECT * FROM users WHERE email = 'x'",
    "WITH recent AS (SELECT * FROM sessions) SELECT user_id FROM recent",
    "SELECT user_id FROM (SELECT * FROM sessions) s",
    "TABLE sessions",
    "SELECT /* every column */ * FROM sessions",
    "SELECT -- all of it\n * FROM sessions",
]
NAMED = [
    "SELECT user_id, created_at, ip FROM sessions WHERE user_id = %(user_id)s",
    "SELECT count(*) AS total, 2 * 3 AS six FROM pg_stat_activity",
    "SELECT '*' AS star, \"*\" FROM t /* SELECT * */ -- SELECT *",
    "SELECT DISTINCT ON (user_id) user_id, created_at FROM sessions",
    "SELECT count(DISTINCT user_id) FROM sessions",
]


@pytest.mark.parametrize("sql", STAR_SPELLINGS)
def test_every_spelling_of_select_star_is_found(sql: str) -> None:
    assert select_star(sql) is not None


@pytest.mark.parametrize("sql", NAMED)
def test_named_columns_and_other_stars_pass(sql: str) -> None:
    assert select_star(sql) is None


def runbook_file(sql: str, preview: str = "SELECT pid FROM pg_stat_activity") -> dict[str, Any]:
    return {
        "id": "test.stars",
        "title": "Stars",
        "summary": "a runbook for the SELECT * lint",
        "data": "personal",
        "source": {
            "seed": "003_0949c7170dea1195.txt",
            "section": "Debugging Procedures › Check Specific User",
        },
        "checks": [
            {
                "id": "up",
                "title": "Answers",
                "probe": {"kind": "postgres", "target": "app_db", "sql": "SELECT 1 AS up"},
            },
            {"id": "rows", "title": "Rows", "probe": {"kind": "postgres", "target": "app_db", "sql": sql}},
        ],
        "actions": [
            {
                "id": "kill",
                "title": "Terminate",
                "risk": "high",
                "step": {"kind": "postgres", "target": "app_db", "sql": "SELECT pg_terminate_backend(1)"},
                "preview": {"kind": "postgres", "target": "app_db", "sql": preview},
            }
        ],
    }


def load(tmp_path: Path, data: dict[str, Any]) -> None:
    (tmp_path / "stars.yml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    load_catalogue(tmp_path)


@pytest.mark.parametrize(
    "sql", ["SELECT * FROM sessions", "select DISTINCT\n *  FROM sessions", "SELECT s.* FROM sessions s"]
)
def test_the_catalogue_refuses_select_star_in_a_check_naming_runbook_and_check(
    tmp_path: Path, sql: str
) -> None:
    with pytest.raises(CatalogueError) as caught:
        load(tmp_path, runbook_file(sql))
    (only,) = caught.value.problems
    assert "stars.yml: checks[1].probe.sql: runbook test.stars: check rows: SELECT *" in only


def test_the_catalogue_refuses_select_star_in_an_action_preview(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError) as caught:
        load(tmp_path, runbook_file("SELECT user_id FROM sessions", preview="SELECT * FROM pg_stat_activity"))
    (only,) = caught.value.problems
    assert "actions[0].preview.sql: runbook test.stars: action kill preview: SELECT *" in only


def test_the_catalogue_accepts_named_columns(tmp_path: Path) -> None:
    load(tmp_path, runbook_file("SELECT user_id, created_at FROM sessions WHERE user_id = 'u'"))


def test_data_class_defaults_to_operational_and_takes_both_spellings() -> None:
    base = runbook_file("SELECT 1 AS n")
    del base["data"]
    assert Runbook.model_validate(base).data == "operational"
    assert Runbook.model_validate({**base, "data": "secret-adjacent"}).data == "secret_adjacent"
    assert Runbook.model_validate({**base, "data": "secret_adjacent"}).data == "secret_adjacent"
    with pytest.raises(ValidationError, match="data"):
        Runbook.model_validate({**base, "data": "public"})


def test_every_runbook_file_states_its_data_class() -> None:
    unstated = [
        str(path.relative_to(RUNBOOKS))
        for path in sorted(RUNBOOKS.rglob("*.yml"))
        if not re.search(r"^data: (operational|personal|secret_adjacent)$", path.read_text("utf-8"), re.M)
    ]
    assert unstated == []


def test_runbooks_showing_people_s_data_are_personal() -> None:
    catalogue = load_catalogue(RUNBOOKS)
    for runbook_id in ("db.user", "db.slow-queries", "db.activity", "db.locks", "logs.tail"):
        runbook = catalogue.get(runbook_id)
        assert runbook is not None and runbook.data == "personal", runbook_id
    secrets = catalogue.get("secrets.rotate")
    assert secrets is not None and secrets.data == "secret_adjacent"

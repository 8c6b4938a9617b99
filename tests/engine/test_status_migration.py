"""Migration 0007 against a real PostgreSQL: stored `error` runs become `unknown`, and the
constraint then holds the new vocabulary."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.types.json import Jsonb

from bot.runbooks.engine import Diagnosis
from bot.store import migrations

OLD_RESULT = {
    "run_id": "run-old",
    "runbook_id": "db.connections",
    "runbook_version": 1,
    "title": "Database connections",
    "params": {},
    "overall": "error",
    "started_at": "2026-12-01T03:00:00Z",
    "finished_at": "2026-12-01T03:00:01Z",
    "checks": [
        {
            "check_id": "total",
            "title": "Total connections",
            "status": "ok",
            "value": 12,
            "result": {"status": "ok", "values": {"n": 12}, "latency_ms": 2.0},
        },
        {
            "check_id": "replica",
            "title": "Replica answers",
            "status": "error",
            "result": {"status": "error", "values": {}, "latency_ms": 1.0, "error": "cannot connect"},
        },
    ],
    "suggestions": [],
}

INSERT = """INSERT INTO diagnosis_runs (run_id, runbook_id, runbook_version, params, overall, started_at,
                finished_at, result)
            VALUES (%s, 'db.connections', 1, '{}', %s, now(), now(), %s)"""


async def test_stored_error_runs_become_unknown_and_error_is_refused_afterwards(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await migrations.migrate(conn, up_to=6)
        await conn.execute(INSERT, ("run-old", "error", Jsonb(OLD_RESULT)))
        await conn.execute(INSERT, ("run-fine", "ok", Jsonb({**OLD_RESULT, "overall": "ok", "checks": []})))
        applied = await migrations.migrate(conn, up_to=7)
        assert [m.name for m in applied] == ["check_status_unknown"]
        assert [m.version for m in await migrations.migrate(conn)] == [
            m.version for m in migrations.shipped_migrations() if m.version > 7
        ]

        rows = await (
            await conn.execute("SELECT run_id, overall, result FROM diagnosis_runs ORDER BY run_id")
        ).fetchall()
        (fine_id, fine_overall, _), (old_id, old_overall, old_result) = rows
        assert (fine_id, fine_overall) == ("run-fine", "ok")
        assert (old_id, old_overall) == ("run-old", "unknown")
        old = Diagnosis.model_validate(old_result)
        assert old.overall == "unknown"
        assert [(c.status, c.reason) for c in old.checks] == [("ok", ""), ("unknown", "cannot connect")]

        await conn.execute(INSERT, ("run-new", "unknown", Jsonb(OLD_RESULT)))
        with pytest.raises(psycopg.errors.CheckViolation):
            await conn.execute(INSERT, ("run-bad", "error", Jsonb(OLD_RESULT)))


def test_a_stored_result_that_still_says_error_reads_as_unknown() -> None:
    old = Diagnosis.model_validate(OLD_RESULT)
    assert old.overall == "unknown"
    assert [c.status for c in old.checks] == ["ok", "unknown"]

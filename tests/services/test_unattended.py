"""Unattended runs (a schedule; alerts next) say loudly what they could not see: nobody is
watching the card when it lands, so the notification text names the unknown checks."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.runbooks.commands import RunRequest
from bot.runbooks.model import Runbook
from bot.services.container import Services
from bot.services.schedules import run_due
from localslack import LocalSlack
from tests.services.conftest import asker

NIGHTLY = {
    "id": "test.nightly",
    "title": "Nightly database check",
    "summary": "runs at 03:00 with nobody watching",
    "source": {"seed": "000_e2e647c03db5623f.txt", "section": "Database Connection Pool Leaks"},
    "schedule": {"cron": "0 3 * * *", "channel": "general"},
    "checks": [
        {
            "id": "up",
            "title": "Database answers",
            "probe": {"kind": "postgres", "target": "app_db", "sql": "SELECT 1 AS up"},
            "value": "up",
            "crit": {"op": "!=", "value": 1},
        },
        {
            "id": "lag",
            "title": "Replication lag",
            "probe": {"kind": "postgres", "target": "app_db", "sql": "SELECT NULL::int AS lag"},
            "value": "lag",
            "warn": {"op": ">", "value": 10},
            "unit": "s",
        },
        {
            "id": "waiting",
            "title": "Lock waits",
            "probe": {"kind": "postgres", "target": "app_db", "sql": "SELECT 'abc' AS n"},
            "value": "n",
            "crit": {"op": ">", "value": 5},
        },
    ],
}


async def test_a_scheduled_run_that_could_not_see_says_so_in_its_text_card_and_record(
    slack: LocalSlack, services: Services
) -> None:
    services.catalogue.runbooks["test.nightly"] = Runbook.model_validate(NIGHTLY)
    ran = await run_due(datetime(2026, 12, 4, 3, 0, tzinfo=UTC), services.catalogue, services.diagnoses)
    assert ran == 1
    card = slack.last_message("general")
    assert card is not None
    assert card.text == (
        "Scheduled: ⚪ Nightly database check: UNKNOWN — ⚠️ could not see: Replication lag, Lock waits"
    )
    shown = str(card.blocks)
    assert "⚪ Nightly database check — UNKNOWN" in shown
    assert "⚪ UNKNOWN · *Replication lag* — no value" in shown
    assert "⚪ UNKNOWN · *Lock waits* — not a number: 'abc'" in shown
    assert "🟢 OK · *Database answers* — *1*" in shown
    assert "*Could not see:* Replication lag, Lock waits" in shown
    async with services.diagnoses._pool.connection() as conn:  # type: ignore[union-attr]
        row = await (
            await conn.execute(
                "SELECT overall, result->'checks'->1->>'status', result->'checks'->1->>'reason'"
                " FROM diagnosis_runs WHERE runbook_id = 'test.nightly'"
            )
        ).fetchone()
    assert row == ("unknown", "unknown", "no value"), "the store accepts and keeps `unknown`"


async def test_a_person_asking_gets_the_card_without_the_unattended_alarm(
    slack: LocalSlack, services: Services
) -> None:
    services.catalogue.runbooks["test.nightly"] = Runbook.model_validate(NIGHTLY)
    diagnosis = await services.diagnoses.deliver(
        RunRequest(runbook_id="test.nightly", params={}),
        channel=slack.channel("general").id,
        asker=asker(slack, "alice", "general"),
    )
    assert diagnosis.overall == "unknown"
    card = slack.last_message("general")
    assert card is not None
    assert card.text == "⚪ Nightly database check: UNKNOWN"
    assert "*Could not see:* Replication lag, Lock waits" in str(card.blocks), "the card still says it"


async def test_a_scheduled_run_that_saw_everything_has_no_alarm(
    slack: LocalSlack, services: Services
) -> None:
    seeing = {**NIGHTLY, "checks": NIGHTLY["checks"][:1]}
    services.catalogue.runbooks["test.nightly"] = Runbook.model_validate(seeing)
    await run_due(datetime(2026, 12, 4, 3, 0, tzinfo=UTC), services.catalogue, services.diagnoses)
    card = slack.last_message("general")
    assert card is not None
    assert card.text == "Scheduled: 🟢 Nightly database check: OK"

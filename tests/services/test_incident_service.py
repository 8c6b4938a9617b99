"""IncidentService use cases, called directly: state in PostgreSQL, effects in localslack."""

from __future__ import annotations

import pytest

from bot.errors import UserError
from bot.services.container import Services
from localslack import LocalSlack
from tests.services.conftest import asker


async def declare(slack: LocalSlack, services: Services, title: str = "checkout is down") -> str:
    incident = await services.incidents.declare_and_diagnose(
        asker(slack, "alice", "incident-response"), title=title, severity="p1"
    )
    return incident.id


async def test_declare_and_diagnose_opens_the_channel_and_puts_the_diagnosis_on_the_timeline(
    slack: LocalSlack, services: Services
) -> None:
    incident_id = await declare(slack, services)
    incident = await services.incidents.store.get(incident_id)
    assert incident is not None
    assert incident.channel_id is not None
    texts = [m.text for m in slack.messages(incident.channel_id)]
    assert any("P1 checklist" in t for t in texts), texts
    kinds = [e.kind for e in await services.incidents.store.timeline(incident_id)]
    assert "diagnosis" in kinds


async def test_a_root_cause_given_in_the_resolve_form_lands_on_the_timeline_with_its_time(
    slack: LocalSlack, services: Services
) -> None:
    incident_id = await declare(slack, services)
    await services.incidents.resolve_from_form(
        incident_id, "pool restarted", "a leaked connection pool", "U0ALICE"
    )
    incident = await services.incidents.store.get(incident_id)
    assert incident is not None
    assert incident.status == "resolved"
    assert incident.root_cause == "a leaked connection pool"
    events = {e.kind: e for e in await services.incidents.store.timeline(incident_id)}
    assert events["root_cause"].text == "Root cause: a leaked connection pool"
    assert events["root_cause"].at <= events["resolved"].at


async def test_set_root_cause_records_it_and_tells_the_asker(slack: LocalSlack, services: Services) -> None:
    incident_id = await declare(slack, services)
    incident = await services.incidents.store.get(incident_id)
    assert incident is not None and incident.channel_id is not None
    where = asker(slack, "alice", incident.channel_id)
    await services.incidents.set_root_cause(incident, "disk full", where)
    assert [e.kind for e in await services.incidents.store.timeline(incident_id)].count("root_cause") == 1
    assert slack.ephemerals("alice", incident.channel_id)[-1].text == "Root cause recorded."


async def test_resolving_without_a_form_to_open_asks_for_the_root_cause_command(
    slack: LocalSlack, services: Services
) -> None:
    incident_id = await declare(slack, services)
    incident = await services.incidents.store.get(incident_id)
    assert incident is not None and incident.channel_id is not None
    with pytest.raises(UserError, match="root-cause"):
        await services.incidents.resolve_or_ask(incident, "fixed", asker(slack, "alice", incident.channel_id))
    assert (await services.incidents.store.get(incident_id)).status != "resolved"  # type: ignore[union-attr]


async def test_resolving_with_a_trigger_opens_the_form(slack: LocalSlack, services: Services) -> None:
    incident_id = await declare(slack, services)
    incident = await services.incidents.store.get(incident_id)
    assert incident is not None and incident.channel_id is not None
    await services.incidents.resolve_or_ask(
        incident, "", asker(slack, "alice", incident.channel_id, trigger=True)
    )
    view = slack.current_view("alice")
    assert view is not None
    assert view.callback_id == "incident_resolve_view"


async def test_verbs_need_an_incident_channel_and_buttons_their_own_channel(
    slack: LocalSlack, services: Services
) -> None:
    with pytest.raises(UserError, match="inside an incident channel"):
        services.incidents.required(None, "status")
    incident_id = await declare(slack, services)
    with pytest.raises(UserError, match="no longer belongs"):
        await services.incidents.on_card(incident_id, slack.channel("general").id)


async def test_page_on_call_without_paging_configured_says_how_to_configure_it(
    slack: LocalSlack, services: Services
) -> None:
    incident_id = await declare(slack, services)
    incident = await services.incidents.store.get(incident_id)
    assert incident is not None and incident.channel_id is not None
    with pytest.raises(UserError, match="OPSBOT_PAGERDUTY_ROUTING_KEY"):
        await services.incidents.page_on_call(incident, asker(slack, "alice", incident.channel_id))


async def test_assigning_a_role_to_someone_unknown_is_refused_and_changes_nothing(
    slack: LocalSlack, services: Services
) -> None:
    incident_id = await declare(slack, services)
    incident = await services.incidents.store.get(incident_id)
    assert incident is not None
    with pytest.raises(UserError, match="don't know that person"):
        await services.incidents.assign_role(incident, "comms", "U0NOBODY", "U0ALICE")
    assert (await services.incidents.store.get(incident_id)).comms_lead is None  # type: ignore[union-attr]
    await services.incidents.assign_role(incident, "comms", slack.user("bob").id, "U0ALICE")
    assert (await services.incidents.store.get(incident_id)).comms_lead == slack.user("bob").id  # type: ignore[union-attr]


async def test_status_timeline_list_note_snooze_and_update_reach_the_right_people(
    slack: LocalSlack, services: Services
) -> None:
    incident_id = await declare(slack, services)
    incident = await services.incidents.store.get(incident_id)
    assert incident is not None and incident.channel_id is not None
    channel = incident.channel_id
    where = asker(slack, "alice", channel)
    posted = len(slack.messages(channel))
    await services.incidents.show_card(incident, where)
    assert len(slack.messages(channel)) == posted + 1
    await services.incidents.add_note(incident, "db failover started", where)
    await services.incidents.show_timeline(incident, where)
    assert "db failover started" in slack.ephemerals("alice", channel)[-1].text
    await services.incidents.list_open(where)
    assert incident_id in slack.ephemerals("alice", channel)[-1].text
    await services.incidents.snooze_reminder(incident, 15, where)
    assert "snoozed for 15 minutes" in slack.ephemerals("alice", channel)[-1].text
    await services.incidents.update_from_form(incident_id, "failover done", "U0ALICE")
    assert any("failover done" in m.text for m in slack.messages(channel))
    kinds = [e.kind for e in await services.incidents.store.timeline(incident_id)]
    assert {"note", "snoozed", "update"} <= set(kinds)


async def queued_timers(database_url: str, incident_id: str) -> list[tuple[str, str | None]]:
    """The incident's timers still waiting on the job queue: (task, tier)."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (
            await conn.execute(
                """SELECT task_name, args ->> 'tier' FROM procrastinate_jobs
                   WHERE status = 'todo'
                     AND args @> jsonb_build_object('_tags', jsonb_build_array(%s::text))""",
                (f"incident:{incident_id}",),
            )
        ).fetchall()
    return sorted((str(task), tier) for task, tier in rows)


async def test_a_severity_change_replans_the_cadence_and_the_escalation_tiers(
    slack: LocalSlack, services: Services, database_url: str
) -> None:
    incident = await services.incidents.declare_and_diagnose(
        asker(slack, "alice", "incident-response"), title="search is slow", severity="p3"
    )
    escalations = [("incident.escalate", "2"), ("incident.escalate", "3")]  # tier 1 is at 0 minutes
    assert await queued_timers(database_url, incident.id) == escalations, "P3 has no update cadence"
    await services.incidents.set_severity(incident, "p0", "U0ALICE")
    assert await queued_timers(database_url, incident.id) == [*escalations, ("incident.remind", None)]
    raised = await services.incidents.store.get(incident.id)
    assert raised is not None
    await services.incidents.set_severity(raised, "p3", "U0ALICE")
    assert await queued_timers(database_url, incident.id) == escalations, "lowered: no reminder, tiers once"


async def test_a_diagnosis_runbook_missing_from_the_catalogue_is_said_in_the_channel(
    slack: LocalSlack, services: Services
) -> None:
    """`symptom=latency` picks perf.diagnose, which this catalogue does not have: say so, never silence."""
    incident = await services.incidents.declare_and_diagnose(
        asker(slack, "alice", "incident-response"), title="search is slow", severity="p1", symptom="latency"
    )
    assert incident.channel_id is not None
    texts = [m.text for m in slack.messages(incident.channel_id)]
    assert any("No diagnosis ran" in t and "perf.diagnose" in t for t in texts), texts
    assert "diagnosis" not in [e.kind for e in await services.incidents.store.timeline(incident.id)]

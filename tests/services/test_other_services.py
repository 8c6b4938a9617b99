"""Diagnoses, schedules, the timeline, reviews and the approval desk, called directly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.errors import UserError
from bot.postmortem.facts import Edits
from bot.render.approval import APPROVE
from bot.runbooks.buttons import ActionButton
from bot.runbooks.commands import ActionRequest, RunRequest
from bot.runbooks.model import Schedule
from bot.services.approval_desk import RequestContext
from bot.services.container import Services
from bot.services.schedules import run_due
from localslack import LocalSlack
from tests.services.conftest import asker


async def test_deliver_posts_the_card_and_records_the_run(slack: LocalSlack, services: Services) -> None:
    diagnosis = await services.diagnoses.deliver(
        RunRequest(runbook_id="incident.p1", params={}), channel=slack.channel("general").id, asker=None
    )
    card = slack.last_message("general")
    assert card is not None
    assert "P1 checklist" in card.text
    assert diagnosis.overall == "ok"
    async with services.diagnoses._pool.connection() as conn:  # type: ignore[union-attr]
        row = await (
            await conn.execute(
                "SELECT channel, message_ts FROM diagnosis_runs WHERE run_id = %s", (diagnosis.run_id,)
            )
        ).fetchone()
    assert row == (slack.channel("general").id, card.ts)


async def test_a_schedule_runs_through_deliver_into_its_channel(
    slack: LocalSlack, services: Services
) -> None:
    catalogue = services.catalogue
    schedule = Schedule(cron="0 8 * * *", channel="general")
    catalogue.runbooks["incident.p0"] = catalogue.runbooks["incident.p0"].model_copy(
        update={"schedule": schedule}
    )
    ran = await run_due(datetime(2026, 12, 4, 8, 0, tzinfo=UTC), catalogue, services.diagnoses)
    assert ran == 1
    card = slack.last_message("general")
    assert card is not None
    assert card.text.startswith("Scheduled: ")


async def test_pins_in_an_incident_channel_join_and_leave_its_timeline(
    slack: LocalSlack, services: Services
) -> None:
    incident = await services.incidents.declare_and_diagnose(
        asker(slack, "alice", "incident-response"), title="pins", severity="p2"
    )
    assert incident.channel_id is not None
    message = slack.state.add_message(
        slack.channel(incident.channel_id), user=slack.user("bob").id, text="it was DNS"
    )
    await services.timeline.pinned(incident.channel_id, message.ts, by=slack.user("alice").id, via="pin")
    await services.timeline.pinned(incident.channel_id, message.ts, by=slack.user("alice").id, via="reaction")
    pins = [e for e in await services.incidents.store.timeline(incident.id) if e.kind == "pinned"]
    assert [(p.text, p.actor) for p in pins] == [("it was DNS", slack.user("bob").id)]
    await services.timeline.unpinned(incident.channel_id, message.ts)
    assert not [e for e in await services.incidents.store.timeline(incident.id) if e.kind == "pinned"]


async def test_a_review_is_published_edited_and_refused_outside_its_channel(
    slack: LocalSlack, services: Services
) -> None:
    incident = await services.incidents.declare_and_diagnose(
        asker(slack, "alice", "incident-response"), title="review", severity="p2"
    )
    assert incident.channel_id is not None
    with pytest.raises(UserError):
        await services.reviews.incident_on_card(incident.id, slack.channel("general").id)
    await services.reviews.publish(incident, slack.user("alice").id)
    assert [f.name for f in slack.files_in(incident.channel_id)] == [f"{incident.id}-review-v1.md"]
    await services.reviews.open_editor(incident, asker(slack, "alice", incident.channel_id, trigger=True))
    assert (slack.current_view("alice") or object()).callback_id == "review_edit_view"  # type: ignore[attr-defined]
    await services.reviews.edit_and_publish(incident.id, Edits(summary="it was DNS"), slack.user("alice").id)
    files = slack.files_in(incident.channel_id)
    assert len(files) == 2
    assert "it was DNS" in slack.file_content(files[-1].id).decode()


async def test_the_approval_desk_requests_decides_runs_once_and_lists(
    slack: LocalSlack, services: Services
) -> None:
    general = slack.channel("general")
    alice = asker(slack, "alice", "general", trigger=True)
    await services.approvals.request(
        ActionRequest(runbook_id="test.counter", action_id="record", params={}), alice
    )
    assert (slack.current_view("alice") or object()).callback_id == "approval_request"  # type: ignore[attr-defined]
    context = RequestContext(runbook="test.counter", action="record", params={}, channel=general.id)
    await services.approvals.submit(context, "count one execution", slack.user("alice").id)
    pending = await services.approvals.service.store.pending_in(general.id)
    assert len(pending) == 1
    await services.approvals.list_pending(asker(slack, "alice", "general"))
    assert pending[0].id in str(slack.ephemerals("alice", "general")[-1].blocks)
    with pytest.raises(UserError, match="own request"):
        await services.approvals.decide(APPROVE, pending[0].id, asker(slack, "alice", "general"))
    await services.approvals.decide(APPROVE, pending[0].id, asker(slack, "bob", "general"))
    record = await services.approvals.service.store.get(pending[0].id)
    assert record is not None
    assert record.state == "succeeded"
    assert await services.approvals.expire_due() == 0
    assert await services.approvals.recover_stranded() == 0


async def test_a_manual_action_button_shows_its_steps_and_a_stale_one_is_refused(
    slack: LocalSlack, services: Services
) -> None:
    with pytest.raises(UserError, match="no longer"):
        await services.approvals.request_from_card(
            ActionButton(runbook="test.counter", action="gone"), asker(slack, "alice", "general")
        )

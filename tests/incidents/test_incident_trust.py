"""Issue #16, an incident a commander can trust, end to end through localslack: a severity change is
an event (announced, diagnosed, re-planned, paged), the declarer names the symptom, every copy of the
card tells one truth, the topic changes only when its text does, and the resolve form asks for the
summary and the root cause separately."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from localslack import LocalSlack, Message
from tests.conftest import running_bot
from tests.incidents.test_incident_lifecycle import declare, text_of, timeline


def said(slack: LocalSlack, channel: str, marker: str) -> list[str]:
    return [m.text for m in slack.messages(channel) if marker in m.text]


async def test_raising_to_p0_is_announced_diagnosed_and_pages_on_call(
    slack: LocalSlack,
    database_url: str,
    data_dir: Path,
    targets_file: Path,
    runbooks_dir: Path,
    pagerduty: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = pagerduty
    async with running_bot(
        slack,
        database_url,
        data_dir,
        OPSBOT_TARGETS=str(targets_file),
        OPSBOT_RUNBOOKS=str(runbooks_dir),
        OPSBOT_PAGERDUTY_URL=url,
        OPSBOT_PAGERDUTY_ROUTING_KEY="R0UT1NGKEY0123456789abcdef",
    ):
        name = await declare(slack, "/incident declare p2 search is slow")
        channel_id = slack.channel(name).id
        await slack.wait_for(lambda: said(slack, name, "P2 checklist"), timeout=15)
        await slack.slash("alice", name, "/incident severity p0")
        raised = await slack.wait_for(lambda: said(slack, "incident-response", "severity raised"), timeout=10)
        assert "P2 → P0, by <@U0ALICE>" in raised[-1]
        assert f"<#{channel_id}>" in raised[-1]
        await slack.wait_for(lambda: said(slack, name, "P0 checklist"), timeout=15)
        await slack.wait_for(lambda: said(slack, name, "on-call paged"), timeout=10)
        assert len(received) == 1
        assert received[0]["payload"]["severity"] == "critical"

        await slack.slash("alice", name, "/incident severity p1")
        lowered = await slack.wait_for(
            lambda: said(slack, "incident-response", "severity lowered"), timeout=10
        )
        assert "P0 → P1, by <@U0ALICE>" in lowered[-1]
        await slack.wait_for(lambda: said(slack, name, "P1 checklist"), timeout=15)
        assert len(received) == 1, "lowering pages nobody"
    kinds = [kind for kind, _, _ in await timeline(database_url)]
    assert kinds.count("severity") == 2
    assert "paged" in kinds


async def test_raising_to_p0_without_paging_says_so_in_the_channel(
    slack: LocalSlack, incident_bot: Any
) -> None:
    name = await declare(slack, "/incident declare p1 search is slow")
    await slack.slash("alice", name, "/incident severity p0")
    warning = await slack.wait_for(lambda: said(slack, name, "not* paged"), timeout=10)
    assert "OPSBOT_PAGERDUTY_ROUTING_KEY" in warning[-1]


async def test_the_declarer_names_the_symptom_and_it_picks_the_diagnosis(
    slack: LocalSlack, incident_bot: Any, database_url: str
) -> None:
    name = await declare(slack, "/incident declare p2 checkout 500s symptom=errors")
    assert name.endswith("checkout-500s"), "the symptom is not part of the title"
    await slack.wait_for(lambda: said(slack, name, "P1 checklist"), timeout=15)
    card = text_of(next(m for m in slack.messages(name) if "· INC-" in text_of(m.blocks[:1])).blocks)
    assert "🟡 P2" in card, "severity keeps its own default"
    assert "*Symptom:* errors" in card
    assert not said(slack, name, "P2 checklist")

    await slack.slash("alice", "incident-response", "/incident declare")
    view = await slack.wait_for(lambda: slack.current_view("alice"), timeout=5)
    await slack.submit_view("alice", view, {"severity": "p2", "title": "search is gone", "symptom": "down"})
    other = await slack.wait_for(
        lambda: next(
            (
                c.args["name"]
                for c in slack.calls("conversations.create")
                if c.ok and str(c.args["name"]).endswith("search-is-gone")
            ),
            None,
        ),
        timeout=10,
    )
    await slack.wait_for(lambda: said(slack, str(other), "P0 checklist"), timeout=15)
    assert [m for m in slack.messages(str(other)) if "*Symptom:* down" in text_of(m.blocks)]


async def test_an_unknown_symptom_is_refused_with_the_known_ones(
    slack: LocalSlack, incident_bot: Any
) -> None:
    await slack.slash("alice", "general", "/incident declare p1 slow symptom=vibes")
    reply = await slack.wait_for(lambda: slack.ephemerals("alice", "general"))
    assert "latency, errors, down" in reply[-1].text
    assert slack.calls("conversations.create") == []


def cards(slack: LocalSlack, channel: str) -> list[Message]:
    return [m for m in slack.messages(channel) if m.blocks and "· INC-" in text_of(m.blocks[:1])]


async def test_every_copy_of_the_card_is_kept_in_step_and_a_resolved_card_does_nothing(
    slack: LocalSlack, paging_bot: list[dict[str, Any]]
) -> None:
    received = paging_bot
    name = await declare(slack, "/incident declare p2 search is slow")
    await slack.slash("alice", name, "/incident status")
    await slack.wait_for(lambda: len(cards(slack, name)) == 2, timeout=10)
    await slack.slash("alice", name, "/incident severity p1")
    await slack.wait_for(
        lambda: all("🟠 P1" in text_of(c.blocks[:1]) for c in cards(slack, name)), timeout=10
    )
    stale = copy.deepcopy(cards(slack, name)[1])  # a client that has not redrawn yet
    await slack.slash("alice", name, "/incident root-cause a slow index")
    await slack.slash("alice", name, "/incident resolve index rebuilt")
    await slack.wait_for(
        lambda: all("✅ *Resolved*" in text_of(c.blocks) for c in cards(slack, name)), timeout=10
    )
    assert all("incident_page" not in text_of(c.blocks) for c in cards(slack, name))
    await slack.click("alice", stale, "incident_page")
    reply = await slack.wait_for(
        lambda: [e for e in slack.ephemerals("alice", name) if "is resolved" in e.text], timeout=10
    )
    assert "does nothing" in reply[-1].text
    assert received == [], "a resolved incident pages nobody"
    assert not said(slack, name, "paged on-call")


async def test_the_topic_is_set_only_when_it_changes_and_a_role_change_is_said(
    slack: LocalSlack, incident_bot: Any
) -> None:
    name = await declare(slack, "/incident declare p2 search is slow")
    await slack.wait_for(lambda: slack.channel(name).topic["value"], timeout=10)
    assert len(slack.calls("conversations.setTopic")) == 1
    await slack.slash("alice", name, "/incident role comms <@U0BOB|bob>")
    await slack.wait_for(
        lambda: said(slack, name, "<@U0BOB> is now communications lead, set by <@U0ALICE>"), timeout=10
    )
    await slack.slash("alice", name, "/incident update still looking")
    await slack.wait_for(lambda: said(slack, name, "still looking"), timeout=10)
    assert len(slack.calls("conversations.setTopic")) == 1, "neither changed the topic's text"
    await slack.slash("alice", name, "/incident severity p1")
    await slack.wait_for(lambda: slack.channel(name).topic["value"].startswith("P1"), timeout=10)
    assert len(slack.calls("conversations.setTopic")) == 2


async def test_the_resolve_form_asks_for_summary_and_root_cause_separately(
    slack: LocalSlack, incident_bot: Any, database_url: str
) -> None:
    name = await declare(slack, "/incident declare p2 search is slow")
    older = await slack.post("alice", name, "maybe the cache?")
    marked = await slack.post("alice", name, "the nightly reindex saturated the disks")
    assert older.message is not None and marked.message is not None
    await slack.react("alice", older.message, "dart")
    await slack.react("alice", marked.message, "dart")
    await slack.click("alice", cards(slack, name)[0], "incident_resolve")
    view = await slack.wait_for(lambda: slack.current_view("alice"), timeout=10)
    inputs = {b["block_id"]: b["element"] for b in view.blocks if b["type"] == "input"}
    assert set(inputs) == {"summary", "root_cause"}
    assert inputs["root_cause"]["initial_value"] == "the nightly reindex saturated the disks"
    await slack.submit_view(
        "alice",
        view,
        {"summary": "reindex moved off-peak", "root_cause": "the nightly reindex saturated the disks"},
    )
    message = await slack.wait_for(lambda: said(slack, name, "resolved* by"), timeout=10)
    assert "reindex moved off-peak" in message[-1]
    assert "*Root cause:* the nightly reindex saturated the disks" in message[-1]
    kinds = [kind for kind, _, _ in await timeline(database_url)]
    assert kinds.index("root_cause") < kinds.index("resolved")


async def test_the_resolve_form_prefills_the_recorded_root_cause(
    slack: LocalSlack, incident_bot: Any
) -> None:
    name = await declare(slack, "/incident declare p2 search is slow")
    await slack.slash("alice", name, "/incident root-cause a runaway cron job")
    await slack.wait_for(lambda: [e for e in slack.ephemerals("alice", name) if "recorded" in e.text])
    await slack.click("alice", cards(slack, name)[0], "incident_resolve")
    view = await slack.wait_for(lambda: slack.current_view("alice"), timeout=10)
    inputs = {b["block_id"]: b["element"] for b in view.blocks if b["type"] == "input"}
    assert inputs["root_cause"]["initial_value"] == "a runaway cron job"

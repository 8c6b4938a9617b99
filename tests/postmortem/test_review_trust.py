"""Issue #16: a timeline people read and a review you would sign, end to end through localslack."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import psycopg

from bot.render.incident import elapsed
from localslack import LocalSlack
from tests.conftest import running_bot
from tests.postmortem.test_review_draft import latest_file, runbooks


async def declare(slack: LocalSlack, text: str) -> str:
    await slack.slash("alice", "incident-response", text)
    created = await slack.wait_for(
        lambda: [c for c in slack.calls("conversations.create") if c.ok], timeout=10
    )
    name = str(created[-1].args["name"])
    await slack.wait_for(lambda: [m for m in slack.messages(name) if "checklist" in m.text], timeout=15)
    return name


async def pinned_count(database_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        row = await (
            await conn.execute("SELECT count(*) FROM timeline_events WHERE kind = 'pinned'")
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_timeline_and_review_show_names_every_channel_diagnosis_and_a_pinned_update_once(
    slack: LocalSlack, database_url: str, data_dir: Path, targets_file: Path, tmp_path: Path
) -> None:
    async with running_bot(
        slack,
        database_url,
        data_dir,
        OPSBOT_TARGETS=str(targets_file),
        OPSBOT_RUNBOOKS=str(runbooks(tmp_path)),
    ):
        name = await declare(slack, "/incident declare p1 checkout is down")
        await slack.slash("alice", name, "/incident role comms <@U0BOB|bob>")
        await slack.wait_for(lambda: "U0BOB" in slack.channel(name).members, timeout=10)

        # A diagnosis somebody runs by hand in the channel, besides the severity's automatic one.
        await slack.slash("bob", name, "/runbook run incident.p2")
        await slack.wait_for(
            lambda: [m for m in slack.messages(name) if "P2 checklist" in m.text], timeout=15
        )

        await slack.slash("bob", name, "/incident update rolled back release 1.2.3")
        update = await slack.wait_for(
            lambda: [m for m in slack.messages(name) if "Update on" in m.text and "rolled back" in m.text],
            timeout=10,
        )
        await slack.react("alice", update[-1], "pushpin")
        for _ in range(50):
            if await pinned_count(database_url) == 1:
                break
            await asyncio.sleep(0.1)
        assert await pinned_count(database_url) == 1, "the 📌 reached the stored timeline"

        await slack.slash("alice", name, "/incident timeline")
        shown = await slack.wait_for(
            lambda: [e for e in slack.ephemerals("alice", name) if "Timeline of" in e.text], timeout=10
        )
        timeline = shown[-1].text
        assert "@bob is communications lead — @alice" in timeline
        assert "U0BOB" not in timeline and "U0ALICE" not in timeline, timeline
        assert timeline.count("Diagnosis incident.p1: OK") == 1, "the automatic run is one entry"
        assert "Diagnosis incident.p2: OK — @bob" in timeline, "a hand-run diagnosis is on the timeline"
        assert timeline.count("rolled back release 1.2.3") == 1, "the pinned update card is the update"

        await slack.slash("alice", name, "/incident postmortem")
        review = await latest_file(slack, name, 1)
        section = review.split("## Timeline\n", 1)[1].split("## Resolution", 1)[0]
        assert "@bob is communications lead (@alice)" in section
        assert "<@U0" not in review and "@U0" not in review, "names, never ids"
        assert section.count("Diagnosis incident.p1: OK") == 1
        assert "Diagnosis incident.p2: OK (@bob)" in section
        assert section.count("rolled back release 1.2.3") == 1


async def test_review_duration_severity_follow_up_and_prefilled_edit_form(
    slack: LocalSlack, database_url: str, data_dir: Path, targets_file: Path, tmp_path: Path
) -> None:
    async with running_bot(
        slack,
        database_url,
        data_dir,
        OPSBOT_TARGETS=str(targets_file),
        OPSBOT_RUNBOOKS=str(runbooks(tmp_path)),
    ):
        name = await declare(slack, "/incident declare p1 checkout is down")
        await slack.slash("alice", name, "/incident role comms <@U0BOB|bob>")
        await slack.wait_for(lambda: "U0BOB" in slack.channel(name).members, timeout=10)
        await slack.slash("alice", name, "/incident severity p0")
        await slack.wait_for(lambda: slack.channel(name).topic["value"].startswith("P0"), timeout=10)
        await slack.post(
            "alice", name, "pool is back to normal. TODO: <@U0BOB|bob> add an alert on pool usage"
        )
        await slack.slash("alice", name, "/incident root-cause connection pool leak in the checkout worker")
        await slack.wait_for(
            lambda: [e for e in slack.ephemerals("alice", name) if "Root cause recorded" in e.text],
            timeout=10,
        )
        await slack.slash("alice", name, "/incident resolve pool fixed and verified")
        resolved_message = await slack.wait_for(
            lambda: [m for m in slack.messages(name) if "resolved* by" in m.text], timeout=10
        )
        said = re.search(r"after (\S+(?: \S+m)?):", resolved_message[-1].text)
        assert said is not None, resolved_message[-1].text

        await slack.slash("alice", name, "/incident postmortem")
        review = await latest_file(slack, name, 1)
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            row = await (
                await conn.execute(
                    "SELECT i.declared_at, i.resolved_at, e.at FROM incidents i"
                    " JOIN timeline_events e ON e.incident_id = i.id AND e.kind = 'severity'"
                )
            ).fetchone()
        assert row is not None
        declared, resolved, changed = row

        assert f"- Duration: {said.group(1)}" in review, "the review's duration is the resolve message's"
        assert said.group(1) == elapsed(declared, resolved)
        assert f"after {said.group(1)}." in review
        assert f"Severity: P1 → P0 at {changed:%H:%M} by @alice." in review
        assert "- [ ] @bob add an alert on pool usage — owner: @bob" in review
        assert "## Root Cause\nconnection pool leak in the checkout worker\n" in review
        summary = review.split("## Summary\n", 1)[1].split("\n\n## Impact", 1)[0]

        published = await slack.wait_for(
            lambda: [m for m in slack.messages(name) if "review_edit" in str(m.blocks)], timeout=10
        )
        await slack.click("alice", published[-1], "review_edit")
        form = await slack.wait_for(lambda: slack.current_view("alice"), timeout=5)
        initial = {b["block_id"]: b["element"].get("initial_value") for b in form.blocks}
        assert initial["summary"] == summary, "the form starts from the draft's summary"
        assert initial["root_cause"] == "connection pool leak in the checkout worker"
        assert initial["impact"] is None and initial["users_affected"] is None

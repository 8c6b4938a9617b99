"""A scripted incident produces a review whose sections hold exactly what happened."""

from __future__ import annotations

from pathlib import Path

import psycopg

from bot.render.incident import elapsed
from localslack import LocalSlack
from tests.approvals.conftest import COUNTER
from tests.conftest import running_bot
from tests.incidents.conftest import CHECKLIST


def runbooks(tmp_path: Path) -> Path:
    directory = tmp_path / "runbooks"
    directory.mkdir()
    for sev in ("p0", "p1", "p2"):
        (directory / f"{sev}.yml").write_text(CHECKLIST.format(sev=sev, sev_upper=sev.upper()))
    # Red below 5 executions: the counter's runbook says higher is better, so 0 → 1 is a mitigation.
    (directory / "counter.yml").write_text(
        COUNTER.replace("    value: runs\n", '    value: runs\n    crit: {op: "<", value: 5}\n')
    )
    return directory


async def latest_file(slack: LocalSlack, channel: str, count: int) -> str:
    files = await slack.wait_for(
        lambda: len(slack.files_in(channel)) >= count and slack.files_in(channel), timeout=15
    )
    return slack.file_content(files[-1].id).decode()


async def test_scripted_incident_review_has_the_facts_in_every_section(
    slack: LocalSlack, database_url: str, data_dir: Path, targets_file: Path, tmp_path: Path, app_db_url: str
) -> None:
    async with await psycopg.AsyncConnection.connect(app_db_url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE executions (id serial PRIMARY KEY, at timestamptz DEFAULT now())")
    async with running_bot(
        slack,
        database_url,
        data_dir,
        OPSBOT_TARGETS=str(targets_file),
        OPSBOT_RUNBOOKS=str(runbooks(tmp_path)),
    ):
        await slack.slash("alice", "incident-response", "/incident declare p0 checkout is down")
        created = await slack.wait_for(
            lambda: [c for c in slack.calls("conversations.create") if c.ok], timeout=10
        )
        name = str(created[-1].args["name"])
        await slack.wait_for(
            lambda: [m for m in slack.messages(name) if "P0 checklist" in m.text], timeout=15
        )
        await slack.slash("alice", name, "/incident role comms <@U0BOB|bob>")
        await slack.wait_for(lambda: "U0BOB" in slack.channel(name).members, timeout=10)

        first_500s = await slack.post("bob", name, "saw the first 500s at 03:02, right after the deploy")
        assert first_500s.message is not None
        await slack.react("alice", first_500s.message, "pushpin")
        await slack.post("alice", name, "TODO: add an alert on pool usage <@U0BOB>")
        await slack.post("bob", name, "Action: rotate the leaked credential <@U0ALICE>")
        await slack.post("bob", name, "db password is postgresql://app:s3cr3tpw@db:5432/app oops")

        await slack.slash("alice", name, "/runbook run test.counter:record")
        view = await slack.wait_for(lambda: slack.current_view("alice"), timeout=5)
        await slack.submit_view("alice", view, {"reason": "record the mitigation"})
        card = await slack.wait_for(
            lambda: [m for m in slack.messages(name) if "approval_approve" in str(m.blocks)], timeout=10
        )
        await slack.click("bob", card[-1], "approval_approve")
        await slack.wait_for(
            lambda: [m for m in slack.messages(name) if "✅ Done" in str(m.blocks)], timeout=10
        )

        await slack.slash("bob", name, "/incident update rolled back release 1.2.3")
        await slack.slash("alice", name, "/incident root-cause connection pool leak in the checkout worker")
        await slack.slash("alice", name, "/incident resolve pool fixed and verified")
        await slack.wait_for(lambda: "resolved" in slack.channel(name).topic["value"], timeout=10)
        # As a person would, ask for the review once the announcements are in the channel: they go
        # out at Slack's pace of one post a second per channel.
        await slack.wait_for(
            lambda: [m for m in slack.messages(name) if "resolved* by" in m.text], timeout=15
        )

        await slack.slash("alice", name, "/incident postmortem")
        review = await latest_file(slack, name, 1)

        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            row = await (await conn.execute("SELECT id, declared_at, resolved_at FROM incidents")).fetchone()
            assert row is not None
            incident_id, declared, resolved = row
            done = await (
                await conn.execute("SELECT finished_at FROM approval_requests WHERE state = 'succeeded'")
            ).fetchone()
            assert done is not None
        # Posts in one channel go at Slack's pace of one a second: the topic can change first.
        resolve_message = (
            await slack.wait_for(lambda: [m.text for m in slack.messages(name) if "resolved* by" in m.text])
        )[0]

        assert f"# Incident Review - {declared:%Y-%m-%d %H:%M} — {incident_id}: checkout is down" in review
        assert f'P0 incident {incident_id}, "checkout is down", declared by @alice' in review
        assert f"- Duration: {elapsed(declared, resolved)}" in review
        assert f"after {elapsed(declared, resolved)}:" in resolve_message
        assert "- Users affected: _To fill:_" in review
        assert "## Root Cause\nconnection pool leak in the checkout worker" in review
        assert f"- {declared:%H:%M}: Incident detected" in review
        assert "_To fill:_ On-call paged" in review
        assert f"- {done[0]:%H:%M}: Mitigation applied" in review
        assert f"- {resolved:%H:%M}: Service restored" in review
        assert "saw the first 500s at 03:02, right after the deploy (@bob)" in review
        assert "- [ ] add an alert on pool usage @bob — owner: @alice" in review, "owner: right after TODO:"
        assert "- [ ] rotate the leaked credential @alice — owner: @bob" in review
        assert "`incident.p0` P0 checklist: **OK**" in review
        assert (
            '`record` on `app_db` (high): requested by @alice — "record the mitigation"; approved by @bob; '
            "outcome: **succeeded**" in review
        )
        assert "rolled back release 1.2.3 (@bob)" in review
        assert "pool fixed and verified" in review
        assert "s3cr3tpw" not in review

        await slack.slash("alice", name, "/incident postmortem")
        await latest_file(slack, name, 2)
        summary = await slack.wait_for(
            lambda: [m for m in slack.messages(name) if "review_edit" in str(m.blocks)], timeout=10
        )
        await slack.click("alice", summary[-1], "review_edit")
        form = await slack.wait_for(lambda: slack.current_view("alice"), timeout=5)
        await slack.submit_view(
            "alice",
            form,
            {"summary": "Checkout failed for every customer.", "users_affected": "about 1,200 shoppers"},
        )
        edited = await latest_file(slack, name, 3)
        assert "## Summary\nCheckout failed for every customer." in edited
        assert "- Users affected: about 1,200 shoppers" in edited
        await slack.slash("alice", name, "/incident postmortem")
        regenerated = await latest_file(slack, name, 4)
        assert "Checkout failed for every customer." in regenerated, "a person's edit survives regeneration"

    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        versions = await (
            await conn.execute(
                "SELECT version FROM postmortems WHERE incident_id = %s ORDER BY version", (incident_id,)
            )
        ).fetchall()
    assert [v for (v,) in versions] == [1, 2, 3, 4]

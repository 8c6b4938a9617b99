"""Security-sensitive incidents freeze restart-type actions (seed 001: do NOT restart, keep evidence)."""

from __future__ import annotations

from pathlib import Path

import psycopg

from localslack import LocalSlack
from tests.conftest import running_bot


async def test_restarts_are_refused_in_a_security_sensitive_incident_and_allowed_elsewhere(
    slack: LocalSlack, database_url: str, data_dir: Path, targets_file: Path, runbooks_with_restart: Path
) -> None:
    async with running_bot(
        slack,
        database_url,
        data_dir,
        OPSBOT_TARGETS=str(targets_file),
        OPSBOT_RUNBOOKS=str(runbooks_with_restart),
    ):
        await slack.slash("alice", "incident-response", "/incident declare")
        form = await slack.wait_for(lambda: slack.current_view("alice"), timeout=5)
        await slack.submit_view(
            "alice", form, {"severity": "p1", "title": "suspicious admin logins", "security": ["yes"]}
        )
        created = await slack.wait_for(
            lambda: [c for c in slack.calls("conversations.create") if c.ok], timeout=10
        )
        name = str(created[-1].args["name"])
        await slack.wait_for(
            lambda: [m for m in slack.messages(name) if "Security-sensitive" in str(m.blocks)], timeout=10
        )

        await slack.slash("alice", name, "/runbook run test.restart:restart")
        refusal = await slack.wait_for(
            lambda: [e for e in slack.ephemerals("alice", name) if "frozen" in e.text]
        )
        assert "do NOT restart" in refusal[-1].text
        assert slack.current_view("alice") is None

        await slack.slash("alice", "incident-response", "/runbook run test.restart:restart")
        view = await slack.wait_for(lambda: slack.current_view("alice"), timeout=5)
        assert "Restart the backend" in str(view.blocks)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        query = (
            "SELECT count(*) FROM audit_events"
            " WHERE action = 'approval.request_refused' AND outcome = 'security_freeze'"
        )
        row = await (await conn.execute(query)).fetchone()
    assert row == (1,)


async def test_approvals_in_an_incident_channel_land_on_its_timeline_and_status(
    slack: LocalSlack, database_url: str, data_dir: Path, targets_file: Path, runbooks_with_restart: Path
) -> None:
    async with running_bot(
        slack,
        database_url,
        data_dir,
        OPSBOT_TARGETS=str(targets_file),
        OPSBOT_RUNBOOKS=str(runbooks_with_restart),
    ):
        await slack.slash("alice", "incident-response", "/incident declare p1 api errors")
        created = await slack.wait_for(
            lambda: [c for c in slack.calls("conversations.create") if c.ok], timeout=10
        )
        name = str(created[-1].args["name"])
        await slack.wait_for(lambda: [m for m in slack.messages(name) if "INC-" in m.text], timeout=10)
        await slack.slash("alice", name, "/runbook run test.restart:restart")
        view = await slack.wait_for(lambda: slack.current_view("alice"), timeout=5)
        await slack.submit_view("alice", view, {"reason": "backend wedged"})
        card = await slack.wait_for(
            lambda: [
                m
                for m in slack.messages(name)
                if "Approval needed" in str(m.blocks) and "approval_approve" in str(m.blocks)
            ],
            timeout=10,
        )
        await slack.slash("alice", name, "/incident status")
        await slack.wait_for(
            lambda: [m for m in slack.messages(name) if "1 approval request(s) waiting" in str(m.blocks)],
            timeout=10,
        )
        await slack.slash("alice", name, "/incident role comms <@U0BOB|bob>")
        await slack.wait_for(lambda: "U0BOB" in slack.channel(name).members, timeout=10)
        await slack.click("bob", card[-1], "approval_approve")
        await slack.wait_for(
            lambda: [m for m in slack.messages(name) if "✅ Done" in str(m.blocks)], timeout=10
        )
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (await conn.execute("SELECT text FROM timeline_events ORDER BY at, id")).fetchall()
    texts = [str(r[0]) for r in rows]
    assert any(t.startswith("Approval requested: restart on app_db") for t in texts)
    assert any(t.startswith("Approved: restart") for t in texts)
    assert any(t.startswith("Action succeeded: restart") for t in texts)


def test_severity_overrides_change_behaviour_and_bad_files_are_one_line(tmp_path: Path) -> None:
    import pytest

    from bot.incidents.severity import SEVERITIES, SeverityConfigError, load_severities

    path = tmp_path / "severities.yml"
    path.write_text("p0: {update_every_minutes: 5}\np2: {announce_updates: true}\n")
    severities = load_severities(path)
    assert severities["p0"].update_every_minutes == 5
    assert severities["p0"].diagnosis_runbook == SEVERITIES["p0"].diagnosis_runbook
    assert severities["p2"].announce_updates is True
    assert severities["p1"] == SEVERITIES["p1"]
    path.write_text("p9: {update_every_minutes: 5}\n")
    with pytest.raises(SeverityConfigError, match="p9"):
        load_severities(path)
    path.write_text("p0: {update_every_minutes: 0}\n")
    with pytest.raises(SeverityConfigError, match="update_every_minutes"):
        load_severities(path)

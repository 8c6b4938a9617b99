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

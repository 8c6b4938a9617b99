"""`opsbot postmortem` from a terminal: the draft without Slack, and a clear line for a wrong id."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from bot.incidents.store import IncidentStore
from bot.store import migrations
from bot.store.pool import create_pool

OPSBOT = str(Path(sys.executable).with_name("opsbot"))


async def test_postmortem_command_writes_the_draft_and_refuses_unknown_ids(
    database_url: str, tmp_path: Path
) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await migrations.migrate(conn)
    pool = create_pool(database_url, min_size=0, max_size=2)
    await pool.open()
    try:
        store = IncidentStore(pool)
        incident = await store.create(
            title="search is slow",
            severity="p2",
            service="search",
            security_sensitive=False,
            declared_by="U0ALICE",
            channel_id="C0SEARCH",
            channel_name="inc-search-is-slow",
        )
        await store.set_root_cause(incident.id, "missing index on queries")
        await store.resolve(incident.id, "U0ALICE", "index added")
    finally:
        await pool.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPSBOT_"))}
    env["DATABASE_URL"] = database_url
    out = tmp_path / "review.md"
    result = subprocess.run(
        [OPSBOT, "postmortem", incident.id, "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert f"{incident.id}: search is slow" in text
    assert "## Root Cause\nmissing index on queries" in text
    assert "- Services impacted: search" in text
    missing = subprocess.run(
        [OPSBOT, "postmortem", "INC-1999-0001"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip() == "opsbot: postmortem: No incident INC-1999-0001."

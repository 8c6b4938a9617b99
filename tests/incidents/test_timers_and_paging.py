"""Timers on the job queue (reminders, escalations) across two processes and a restart; paging."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from localslack import LocalSlack
from tests.conftest import bot_env, running_bot

OPSBOT = str(Path(sys.executable).with_name("opsbot"))
# P0: reminder every 10 min → 3 s; escalation tiers at 15 and 30 min → 4.5 s and 9 s.
SCALE = "0.005"


def start_replica(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [OPSBOT, "serve"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=open(env["OPSBOT_DATA_DIR"] + "/stderr.log", "a"),  # noqa: SIM115
        text=True,
    )
    assert proc.stdout is not None
    match = re.search(r"(http://127\.0\.0\.1:\d+)", proc.stdout.readline())
    assert match
    return proc, match.group(1) + "/slack/events"


def texts(slack: LocalSlack, channel: str, marker: str) -> list[str]:
    return [m.text for m in slack.messages(channel) if marker in m.text]


async def test_reminders_and_escalations_fire_once_across_replicas_survive_a_restart_and_stop_on_resolve(
    slack: LocalSlack,
    database_url: str,
    tmp_path: Path,
    redis_url: str,
    targets_file: Path,
    runbooks_dir: Path,
) -> None:
    def env(n: int) -> dict[str, str]:
        data_dir = tmp_path / f"replica{n}"
        data_dir.mkdir(exist_ok=True)
        return bot_env(
            slack,
            database_url,
            data_dir,
            REDIS_URL=redis_url,
            OPSBOT_TARGETS=str(targets_file),
            OPSBOT_RUNBOOKS=str(runbooks_dir),
            OPSBOT_TIMER_SCALE=SCALE,
        )

    first, first_url = start_replica(env(0))
    second, second_url = start_replica(env(1))
    try:
        slack.request_url = first_url
        await slack.slash("alice", "incident-response", "/incident declare p0 checkout is down")
        created = await slack.wait_for(
            lambda: [c for c in slack.calls("conversations.create") if c.ok], timeout=10
        )
        name = str(created[-1].args["name"])
        await slack.wait_for(
            lambda: [m for m in slack.messages(name) if "P0 checklist" in m.text], timeout=15
        )
        first.terminate()  # the replica that declared goes away; its timers must not
        assert first.wait(30) == 0
        first, first_url = start_replica(env(0))
        slack.request_url = second_url
        await slack.wait_for(lambda: len(texts(slack, name, "escalating to tier 3")) >= 1, timeout=20)
        await asyncio.sleep(1.0)
        assert len(texts(slack, name, "escalating to tier 2")) == 1
        assert len(texts(slack, name, "escalating to tier 3")) == 1
        reminders = texts(slack, name, "time for a status update")
        assert 2 <= len(reminders) <= 4, reminders
        assert "<@U0ALICE>" in reminders[0]
        assert "U0CAROL" in slack.channel(name).members, "tier 3 (managers) was invited"

        await slack.slash("alice", name, "/incident root-cause leaked connections")
        await slack.slash("alice", name, "/incident resolve fixed")
        await slack.wait_for(lambda: "resolved" in slack.channel(name).topic["value"], timeout=10)
        after_resolve = len(texts(slack, name, "time for a status update"))
        await asyncio.sleep(4.0)
        assert len(texts(slack, name, "time for a status update")) == after_resolve
    finally:
        for proc in (first, second):
            proc.terminate()
        for proc in (first, second):
            proc.wait(30)


def page_button(slack: LocalSlack, channel: str) -> tuple[Any, str]:
    card = next(m for m in slack.messages(channel) if m.blocks and "incident_page" in json.dumps(m.blocks))
    return card, "incident_page"


async def test_page_on_call_sends_one_pagerduty_trigger_and_records_it(
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
        await slack.slash("alice", "incident-response", "/incident declare p0 checkout is down")
        created = await slack.wait_for(
            lambda: [c for c in slack.calls("conversations.create") if c.ok], timeout=10
        )
        name = str(created[-1].args["name"])
        card = await slack.wait_for(
            lambda: [m for m in slack.messages(name) if m.blocks and "incident_page" in json.dumps(m.blocks)],
            timeout=10,
        )
        await slack.click("alice", card[-1], "incident_page")
        await slack.wait_for(
            lambda: [m for m in slack.messages(name) if "paged on-call" in m.text], timeout=10
        )
    assert len(received) == 1
    event = received[0]
    assert event["event_action"] == "trigger"
    assert event["routing_key"] == "R0UT1NGKEY0123456789abcdef"
    assert event["payload"]["severity"] == "critical"
    assert event["dedup_key"].startswith("INC-")
    assert all("R0UT1NGKEY" not in m.text for m in slack.messages(name)), "the routing key is a secret"


async def test_without_a_routing_key_page_says_what_to_configure(
    slack: LocalSlack, database_url: str, data_dir: Path, targets_file: Path, runbooks_dir: Path
) -> None:
    async with running_bot(
        slack, database_url, data_dir, OPSBOT_TARGETS=str(targets_file), OPSBOT_RUNBOOKS=str(runbooks_dir)
    ):
        await slack.slash("alice", "incident-response", "/incident declare p1 search is slow")
        created = await slack.wait_for(
            lambda: [c for c in slack.calls("conversations.create") if c.ok], timeout=10
        )
        name = str(created[-1].args["name"])
        card = await slack.wait_for(
            lambda: [m for m in slack.messages(name) if m.blocks and "incident_page" in json.dumps(m.blocks)],
            timeout=10,
        )
        await slack.click("alice", card[-1], "incident_page")
        reply = await slack.wait_for(
            lambda: [e for e in slack.ephemerals("alice", name) if "OPSBOT_PAGERDUTY_ROUTING_KEY" in e.text],
            timeout=10,
        )
        assert reply

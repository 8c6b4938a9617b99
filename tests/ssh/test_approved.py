"""An approved action over SSH, through Slack as people do it: requested, approved by a second
person, run once on the remote host, checked after; and no key reaches Slack or the audit log."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
import yaml

from bot.server import BotServer
from localslack import LocalSlack
from tests.approvals.helpers import button, card_state, request_action, text_of
from tests.conftest import running_bot
from tests.ssh.sshd import Sshd

REMOTE = """
id: test.remote
title: Remote marker
summary: an action that leaves a marker file on an SSH host
source: {seed: 004_64a8611e63a2df9d.txt, section: "Performance Diagnosis"}
command: {family: test, subcommand: remote}
checks:
  - id: markers
    title: Markers on the host
    probe: {kind: command, target: box, argv: [find, ., -name, "marker-*"]}
    value: output_lines
    warn: {op: ">", value: 0}
    unit: files
actions:
  - id: mark
    title: Leave a marker
    summary: touches marker-1 in the host's working directory
    risk: high
    step: {kind: command, target: box, argv: [touch, marker-1]}
    verify: [markers]
next:
  - suggest: ["action:mark"]
"""


@pytest.fixture
async def remote_bot(
    slack: LocalSlack, database_url: str, data_dir: Path, tmp_path: Path, sshd: Sshd
) -> AsyncIterator[tuple[BotServer, Path]]:
    workdir = tmp_path / "host"
    workdir.mkdir()
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "remote.yml").write_text(REMOTE)
    box = sshd.target(allowed_programs=["find", "touch"], cwd=str(workdir))
    box["ssh"] = box["ssh"] | {"private_key": sshd.user_key, "private_key_file": None}
    targets = tmp_path / "targets.yml"
    targets.write_text(yaml.safe_dump({"targets": {"box": box}}))
    async with running_bot(
        slack, database_url, data_dir, OPSBOT_TARGETS=str(targets), OPSBOT_RUNBOOKS=str(runbooks)
    ) as server:
        yield server, workdir


async def test_an_approved_action_runs_once_on_the_ssh_host(
    slack: LocalSlack, remote_bot: tuple[BotServer, Path], database_url: str, sshd: Sshd
) -> None:
    _, workdir = remote_bot
    card = await request_action(slack, "alice", "/test remote", reason="leave a marker")
    assert not (workdir / "marker-1").exists()
    await slack.click("bob", card, button(card, "approval_approve"))
    done = await card_state(slack, card, "✅ Done")
    assert "approved by <@U0BOB>" in text_of(done.blocks)
    assert (workdir / "marker-1").exists()
    # The result and the checks after it are two posts in one thread: Slack paces them a second apart.
    await slack.wait_for(
        lambda: "Markers on the host" in " ".join(m.text for m in slack.thread("incident-response", card.ts)),
        timeout=10,
    )
    replies = " ".join(m.text for m in slack.thread("incident-response", card.ts))
    assert "succeeded" in replies
    assert "Markers on the host*: 0 → 1" in replies, replies
    everything = json.dumps([m.blocks for m in slack.messages("incident-response")]) + replies
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (await conn.execute("SELECT * FROM audit_events")).fetchall()
    everything += repr(rows)
    assert "approval.succeeded" in everything
    for line in sshd.user_key.splitlines()[1:-1]:
        assert line not in everything

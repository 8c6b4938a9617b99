"""Targets that are down, refuse, hang or fail: the diagnosis still arrives on time and says which."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from localslack import LocalSlack
from tests.conftest import running_bot

RUNBOOK = """
id: test.targets
title: Every kind of broken target
summary: one healthy check beside a refused database, a hung cache and a failing service
source: {seed: 000_e2e647c03db5623f.txt, section: "Incident Response Procedures"}
command: {family: test, subcommand: targets}
deadline_s: 4
checks:
  - id: healthy
    title: App database answers
    probe: {kind: postgres, target: app_db, sql: "SELECT 1 AS up"}
    value: up
    crit: {op: "!=", value: 1}
  - id: refused
    title: Replica database answers
    probe: {kind: postgres, target: replica_db, sql: "SELECT 1 AS up"}
    value: up
  - id: hung
    title: Cache answers
    timeout_s: 1.5
    probe: {kind: redis, target: hung_cache, command: info}
  - id: failing
    title: Service health
    probe: {kind: http, target: failing_api, path: /health}
    value: status_ok
    crit: {op: "==", value: false}
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def black_hole() -> AsyncIterator[int]:
    """Accepts connections and never answers: the worst kind of broken target."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.fixture
async def failing_api() -> AsyncIterator[str]:
    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "error"}, status=500)

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_a_diagnosis_with_refused_hung_and_failing_targets_arrives_within_its_deadline(
    slack: LocalSlack,
    database_url: str,
    app_db_url: str,
    data_dir: Path,
    tmp_path: Path,
    black_hole: int,
    failing_api: str,
) -> None:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "targets.yml").write_text(RUNBOOK)
    targets = tmp_path / "targets.yml"
    targets.write_text(
        "targets:\n"
        f"  app_db: {{kind: postgres, dsn: '{app_db_url}'}}\n"
        f"  replica_db: {{kind: postgres, dsn: 'postgresql://postgres@127.0.0.1:{_closed_port()}/x'}}\n"
        f"  hung_cache: {{kind: redis, url: 'redis://127.0.0.1:{black_hole}/0'}}\n"
        f"  failing_api: {{kind: http, base_url: '{failing_api}'}}\n"
    )
    env = {"OPSBOT_RUNBOOKS": str(runbooks), "OPSBOT_TARGETS": str(targets)}
    async with running_bot(slack, database_url, data_dir, **env):
        started = time.monotonic()
        await slack.slash("alice", "incident-response", "/test targets")
        cards = await slack.wait_for(
            lambda: [
                m for m in slack.messages("incident-response") if "Every kind of broken target" in m.text
            ],
            timeout=15,
        )
        elapsed = time.monotonic() - started
        card = json.dumps(cards[0].blocks, ensure_ascii=False)
    assert elapsed < 4 + 2, f"the card took {elapsed:.1f}s against a 4 s deadline"
    assert "🟢 OK · *App database answers* — *1*" in card, "a healthy check beside broken ones still reports"
    assert "⚪ UNKNOWN · *Replica database answers* — cannot connect: Connection refused" in card
    assert "⚪ UNKNOWN · *Cache answers* — timed out after 1.5s" in card, (
        "a hung target costs its own timeout"
    )
    assert "🔴 CRITICAL · *Service health* — *no*" in card
    assert "CRITICAL" in card

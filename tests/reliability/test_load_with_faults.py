"""Mixed on-call traffic while a target flaps and Redis restarts; afterwards every record is consistent.

40 s in `make test`; `OPSBOT_SOAK_SECONDS=600 pytest tests/reliability/test_load_with_faults.py`
runs the 10-minute soak.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from aiohttp import web

from bot.audit import verify as verify_chain
from bot.demo.redis_server import redis_server
from localslack import LocalSlack, Message
from localslack.delivery import Delivery
from localslack.state import MAX_PINS
from tests.approvals.conftest import COUNTER
from tests.approvals.helpers import button, card_state, request_action
from tests.conftest import running_bot

SOAK_SECONDS = float(os.environ.get("OPSBOT_SOAK_SECONDS", "40"))

RUNBOOKS = {
    "counter.yml": COUNTER,
    "flap.yml": """
id: test.flap
title: Flapping service
summary: health of a service that goes up and down, and the app database beside it
source: {seed: 000_e2e647c03db5623f.txt, section: "Incident Response Procedures"}
command: {family: test, subcommand: flap}
deadline_s: 3
checks:
  - id: health
    title: Flappy /health
    timeout_s: 1
    probe: {kind: http, target: flappy, path: /health}
    value: status_ok
    crit: {op: "==", value: false}
  - id: db
    title: App database answers
    probe: {kind: postgres, target: app_db, sql: "SELECT 1 AS up"}
    value: up
""",
    "p2.yml": """
id: incident.p2
title: P2 checklist
summary: the P2 checklist, cut down for the soak
source: {seed: 000_e2e647c03db5623f.txt, section: "Incident Response Procedures"}
command: {family: diagnose, subcommand: p2}
checks:
  - id: db
    title: Database answers
    probe: {kind: postgres, target: app_db, sql: "SELECT 1 AS up"}
    value: up
""",
}


@dataclass
class Ledger:
    """What the traffic did, to hold the stored state against at the end."""

    deliveries: list[Delivery] = field(default_factory=list)
    mentions: list[Message] = field(default_factory=list)
    declared: int = 0
    pinned: list[tuple[str, str]] = field(default_factory=list)
    approvals: list[Message] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _flappy_service(stack: AsyncExitStack) -> str:
    """/health answers 200 and 503 in turns of about a second."""

    async def health(_: web.Request) -> web.Response:
        up = int(time.monotonic()) % 2 == 0
        return web.json_response({"status": "ok" if up else "down"}, status=200 if up else 503)

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return f"http://127.0.0.1:{runner.addresses[0][1]}"


async def _until(deadline: float, step: Callable[[int], Awaitable[None]], pause: float) -> None:
    for n in itertools.count():
        if time.monotonic() >= deadline:
            return
        await step(n)
        await asyncio.sleep(pause)


def _bot_replies(slack: LocalSlack, channel: str, thread_ts: str) -> int:
    return sum(1 for m in slack.thread(channel, thread_ts) if m.user == slack.bot_user_id)


@pytest.fixture
async def soak_targets(tmp_path: Path, app_db_url: str) -> AsyncIterator[tuple[Path, int]]:
    async with AsyncExitStack() as stack:
        flappy = await _flappy_service(stack)
        async with await psycopg.AsyncConnection.connect(app_db_url, autocommit=True) as conn:
            await conn.execute(
                "CREATE TABLE executions (id serial PRIMARY KEY, at timestamptz DEFAULT now())"
            )
        targets = tmp_path / "targets.yml"
        targets.write_text(
            "targets:\n"
            f"  app_db: {{kind: postgres, dsn: '{app_db_url}'}}\n"
            f"  flappy: {{kind: http, base_url: '{flappy}'}}\n"
        )
        yield targets, _free_port()


@pytest.mark.timeout(SOAK_SECONDS + 180)
async def test_mixed_traffic_through_flaps_and_a_redis_restart_leaves_everything_consistent(
    slack: LocalSlack,
    database_url: str,
    app_db_url: str,
    data_dir: Path,
    tmp_path: Path,
    soak_targets: tuple[Path, int],
) -> None:
    targets, redis_port = soak_targets
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    for name, text in RUNBOOKS.items():
        (runbooks / name).write_text(text)
    ledger = Ledger()
    redis_dir = tmp_path / "redis"
    first_redis = AsyncExitStack()
    async with first_redis:
        url = await first_redis.enter_async_context(redis_server(redis_dir, port=redis_port))
        env = {"OPSBOT_RUNBOOKS": str(runbooks), "OPSBOT_TARGETS": str(targets), "REDIS_URL": url}
        # Unlimited on purpose: the soak drives #general well past Slack's one post a second to
        # load the faults (flaps, a Redis restart, redeliveries); pacing is tested in tests/outbound.
        slack.faults.disable_rate_limits()
        env["OPSBOT_SLACK_BUDGET_SCALE"] = "100"
        async with running_bot(slack, database_url, data_dir, **env):
            deadline = time.monotonic() + SOAK_SECONDS
            second_redis = AsyncExitStack()
            async with second_redis:

                async def restart_redis() -> None:
                    await asyncio.sleep(SOAK_SECONDS / 3)
                    await first_redis.aclose()
                    await asyncio.sleep(min(5.0, SOAK_SECONDS / 10))
                    await second_redis.enter_async_context(redis_server(redis_dir, port=redis_port))

                await asyncio.gather(
                    restart_redis(),
                    _declarer(slack, ledger, deadline),
                    _diagnoser(slack, ledger, deadline),
                    _mentioner(slack, ledger, deadline),
                    _approver(slack, ledger, deadline),
                    _pinner(slack, ledger, deadline),
                )
                await asyncio.sleep(3)  # let background work started by the last requests finish
                await _check_slack_side(slack, ledger)
    await _check_store(slack, ledger, database_url, app_db_url)


async def _declarer(slack: LocalSlack, ledger: Ledger, deadline: float) -> None:
    async def declare(n: int) -> None:
        ledger.deliveries.append(
            await slack.slash("alice", "incident-response", f"/incident declare p2 soak {n}")
        )
        ledger.declared += 1

    await _until(deadline, declare, pause=max(2.0, SOAK_SECONDS / 12))


async def _diagnoser(slack: LocalSlack, ledger: Ledger, deadline: float) -> None:
    users = ["alice", "bob", "carol", "dave"]

    async def diagnose(n: int) -> None:
        commands = ["/test flap", "/opsbot help", "/runbook list"]
        ledger.deliveries.append(await slack.slash(random.choice(users), "general", commands[n % 3]))

    await _until(deadline, diagnose, pause=0.2)


async def _mentioner(slack: LocalSlack, ledger: Ledger, deadline: float) -> None:
    async def mention(n: int) -> None:
        delivery = await slack.post("dave", "general", f"<@{slack.bot_user_id}> ping {n}")
        assert delivery.message is not None
        ledger.mentions.append(delivery.message)
        if n % 4 == 0:
            # Slack redelivers whatever was sent last (a command, click, event): it must act once.
            await slack.replay_last()

    await _until(deadline, mention, pause=0.3)


async def _approver(slack: LocalSlack, ledger: Ledger, deadline: float) -> None:
    async def one_approval(_: int) -> None:
        card = await request_action(slack, "alice", "/test counter")
        ledger.approvals.append(card)
        clicked = await slack.click("bob", card, button(card, "approval_approve"))
        try:
            await card_state(slack, card, "✅ Done", timeout=30)
        except TimeoutError:
            now = slack.message("incident-response", card.ts)
            raise AssertionError(
                f"card stuck: {now.text} click={clicked.status} {clicked.user_error} {clicked.ack}"
            ) from None

    await _until(deadline, one_approval, pause=0.5)


async def _pinner(slack: LocalSlack, ledger: Ledger, deadline: float) -> None:
    async def pin(n: int) -> None:
        alice = slack.user("alice").id
        # A channel created a moment ago may not have its declarer invited yet: pin where alice is,
        # and where Slack still takes a pin (it refuses the 101st of a channel; `make soak` gets there).
        channels = [
            c
            for c in slack.state.channels.values()
            if c.name.startswith("inc-")
            and not c.is_archived
            and alice in c.members
            and len(c.pins) < MAX_PINS
        ]
        if not channels:
            return
        channel = random.choice(channels)
        posted = await slack.post("alice", channel.name, f"finding {n}: the pool is at its limit")
        assert posted.message is not None
        await slack.pin("alice", posted.message)
        ledger.pinned.append((channel.id, posted.message.ts))

    await _until(deadline, pin, pause=0.7)


async def _check_slack_side(slack: LocalSlack, ledger: Ledger) -> None:
    failed = [(d.kind, d.status, d.user_error) for d in ledger.deliveries if not d.ok]
    assert not failed, (
        f"{len(failed)} of {len(ledger.deliveries)} commands were not acknowledged: {failed[:5]}"
    )
    await slack.wait_for(
        lambda: all(_bot_replies(slack, "general", m.ts) >= 1 for m in ledger.mentions), timeout=20
    )
    twice = [m.text for m in ledger.mentions if _bot_replies(slack, "general", m.ts) != 1]
    assert not twice, f"mentions answered other than once: {twice[:5]}"
    rejected = [(c.method, c.error) for c in slack.calls(ok=False) if c.error != "ratelimited"]
    assert not rejected, f"Slack refused calls: {rejected[:5]}"
    assert len(ledger.mentions) > SOAK_SECONDS and ledger.declared >= 3 and ledger.approvals
    print(
        f"\nsoak {SOAK_SECONDS:.0f}s: {len(ledger.deliveries)} commands, {len(ledger.mentions)} mentions, "
        f"{ledger.declared} incidents, {len(ledger.pinned)} pins, {len(ledger.approvals)} approvals"
    )


async def _check_store(slack: LocalSlack, ledger: Ledger, database_url: str, app_db_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        incidents = await (
            await conn.execute(
                """SELECT i.id, i.channel_id, i.card_ts,
                          (SELECT count(*) FROM timeline_events e WHERE e.incident_id = i.id
                                                                    AND e.kind = 'declared')
                   FROM incidents i"""
            )
        ).fetchall()
        assert len(incidents) == ledger.declared, "an incident was lost or declared twice"
        for incident_id, channel_id, card_ts, declared_entries in incidents:
            assert channel_id and card_ts, f"{incident_id} is half-written"
            assert declared_entries == 1, f"{incident_id} has {declared_entries} declared entries"
            assert slack.state.channel(channel_id).messages.get(card_ts) is not None, (
                f"{incident_id} has no card"
            )
        for channel_id, ts in ledger.pinned:
            row = await (
                await conn.execute(
                    """SELECT count(*) FROM timeline_events e JOIN incidents i ON i.id = e.incident_id
                       WHERE i.channel_id = %s AND e.message_ts = %s""",
                    (channel_id, ts),
                )
            ).fetchone()
            assert row is not None and row[0] == 1, f"pin {ts} in {channel_id} is on the timeline {row} times"
        states = dict(
            await (
                await conn.execute("SELECT state, count(*) FROM approval_requests GROUP BY state")
            ).fetchall()
        )
        assert set(states) == {"succeeded"}, f"approvals not all settled: {states}"
        assert states["succeeded"] == len(ledger.approvals)
        assert (await verify_chain(conn)).ok, "the audit chain does not verify"
    async with await psycopg.AsyncConnection.connect(app_db_url) as conn:
        row = await (await conn.execute("SELECT count(*) FROM executions")).fetchone()
        assert row is not None and row[0] == len(ledger.approvals), (
            "an approved action ran twice or not at all"
        )

"""The load generator counts what happened: acks, replies landing in localslack, and failures.

Short, low-rate runs against the bare Bolt baseline (a child process, as in the benchmark), a real
opsbot over HTTP and Socket Mode, and a server that never answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bench.common import black_hole
from bench.loadgen import Completions, HttpSender, Sender, Shot, SocketSender, open_loop, summarize
from bench.procs import AppProcess, bare_bolt_argv, running_app
from bench.slackside import Payloads, reply_key, socket_deliver, watch_replies
from bot.server import BotServer
from localslack import LocalSlack
from tests.conftest import running_bot

REPO = Path(__file__).resolve().parents[2]
USERS = ("alice", "bob", "carol", "dave")


def help_shots(slack: LocalSlack, *, replies: bool) -> Callable[[int], Shot]:
    payloads = Payloads(slack)

    def make(i: int) -> Shot:
        payload = payloads.slash(USERS[i % 4], "incident-response", "/opsbot", "help")
        return Shot("help", "slash_commands", payload, reply_in_ack=replies)

    return make


@pytest.fixture
async def bare_bolt(slack: LocalSlack, tmp_path: Path) -> AsyncIterator[AppProcess]:
    env = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "SLACK_API_URL": slack.api_url,
        "PYTHONPATH": str(REPO),
    }
    async with running_app("bare", bare_bolt_argv(), env, workdir=tmp_path) as app:
        yield app


async def test_every_ack_from_bare_bolt_is_counted_on_the_clock(
    slack: LocalSlack, bare_bolt: AppProcess
) -> None:
    sender = HttpSender(bare_bolt.url + "/slack/events", slack.signing_secret)
    await sender.start()
    try:
        run = await open_loop(sender, help_shots(slack, replies=False), rate=20, duration_s=2)
    finally:
        await sender.close()
    figures = summarize(run)
    assert (figures["sent"], figures["acked"], figures["errors"]) == (40, 40, 0)
    assert figures["replies_expected"] == 0
    assert 0 < figures["ack"]["p50_ms"] <= figures["ack"]["p99_ms"] <= figures["ack"]["max_ms"] < 1000
    # Open loop: request i leaves at start + i/20 s, whatever happened to the ones before.
    offsets = [s.scheduled - run.started for s in run.shots]
    assert offsets == pytest.approx([i / 20 for i in range(40)], abs=1e-9)
    assert run.finished_sending - run.started == pytest.approx(1.95, abs=0.2)


async def test_requests_signed_with_the_wrong_secret_are_errors(
    slack: LocalSlack, bare_bolt: AppProcess
) -> None:
    sender = HttpSender(bare_bolt.url + "/slack/events", "not-the-signing-secret")
    await sender.start()
    try:
        figures = summarize(await open_loop(sender, help_shots(slack, replies=False), rate=10, duration_s=1))
    finally:
        await sender.close()
    assert (figures["sent"], figures["acked"], figures["errors"]) == (10, 0, 10)
    assert figures["error_kinds"] == {"http_401": 10}


async def test_an_app_that_never_answers_is_all_errors_after_the_ack_window(slack: LocalSlack) -> None:
    async with black_hole() as port:
        sender = HttpSender(f"http://127.0.0.1:{port}/slack/events", slack.signing_secret)
        await sender.start()
        try:
            run = await open_loop(sender, help_shots(slack, replies=True), rate=5, duration_s=1)
        finally:
            await sender.close()
    figures = summarize(run)
    assert (figures["sent"], figures["acked"], figures["errors"]) == (5, 0, 5)
    assert figures["error_kinds"] == {"ack_timeout": 5}
    assert figures["replies_expected"] == 0, "a request that failed expects no reply"
    assert all(s.ack_s is None and s.completion_s is None for s in run.shots)


@pytest.fixture(params=["http", "socket"])
async def opsbot(
    request: pytest.FixtureRequest, slack: LocalSlack, database_url: str, data_dir: Path, targets_file: Path
) -> AsyncIterator[tuple[BotServer, Sender]]:
    socket = request.param == "socket"
    async with running_bot(
        slack, database_url, data_dir, socket_mode=socket, OPSBOT_TARGETS=str(targets_file)
    ) as server:
        sender: Sender = (
            SocketSender(socket_deliver(slack))
            if socket
            else HttpSender(server.url + "/slack/events", slack.signing_secret)
        )
        await sender.start()
        try:
            yield server, sender
        finally:
            await sender.close()


async def test_replies_from_a_real_bot_are_matched_to_their_requests(
    slack: LocalSlack, opsbot: tuple[BotServer, Sender]
) -> None:
    _, sender = opsbot
    payloads = Payloads(slack)
    helps = help_shots(slack, replies=True)

    def make(i: int) -> Shot:
        if i % 2:
            return helps(i)
        user = USERS[i % 4]
        payload = payloads.slash(user, "incident-response", "/db", "connections")
        return Shot("db", "slash_commands", payload, key=reply_key(slack.user(user).id))

    completions = Completions()
    async with watch_replies(slack, completions):
        run = await open_loop(sender, make, rate=10, duration_s=2, completions=completions)
    figures = summarize(run)
    assert (figures["sent"], figures["acked"], figures["errors"]) == (20, 20, 0)
    assert (figures["replies_expected"], figures["replies_delivered"], figures["undelivered"]) == (20, 20, 0)
    cards = [c for c in slack.calls("chat.postMessage") if c.ok and "Database connections" in str(c.args)]
    assert len(cards) == 10, "one diagnosis card per /db connections"
    for shot in run.shots:
        assert shot.completion_s is not None
        if shot.scenario == "help":
            assert shot.completion_s == shot.ack_s, "the help reply travels in the ack"


async def test_a_reply_that_never_lands_is_undelivered(
    slack: LocalSlack, opsbot: tuple[BotServer, Sender]
) -> None:
    _, sender = opsbot
    payloads = Payloads(slack)

    def make(i: int) -> Shot:
        # `/opsbot help` answers in its ack and posts nothing, so a reply expected elsewhere never comes.
        payload = payloads.slash("alice", "incident-response", "/opsbot", "help")
        return Shot("help", "slash_commands", payload, key=reply_key(slack.user("alice").id))

    completions = Completions()
    async with watch_replies(slack, completions):
        run = await open_loop(sender, make, rate=5, duration_s=1, completions=completions, settle_s=1.0)
    figures = summarize(run)
    assert (figures["sent"], figures["acked"], figures["errors"]) == (5, 5, 0)
    assert (figures["replies_expected"], figures["replies_delivered"], figures["undelivered"]) == (5, 0, 5)
    assert figures["completion"]["p99_ms"] is None

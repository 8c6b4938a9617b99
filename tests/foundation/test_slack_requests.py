"""The bot as Slack reaches it, through localslack: signed requests, help, bad input, dedupe."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.server import BotServer
from localslack import LocalSlack
from tests.conftest import bot_env, running_bot

OPSBOT = str(Path(sys.executable).with_name("opsbot"))


async def test_help_lists_every_command_as_an_ephemeral_reply(slack: LocalSlack, bot: BotServer) -> None:
    delivery = await slack.slash("alice", "incident-response", "/opsbot help")
    assert delivery.ok
    reply = await slack.wait_for(lambda: slack.ephemerals("alice", "incident-response"))
    text = str(reply[-1].blocks)
    assert "What opsbot can do" in text
    assert "/opsbot help" in text
    assert slack.ephemerals("bob") == []
    assert slack.messages("incident-response") == [], "help must not be posted to the channel"


async def test_unknown_subcommand_answers_with_usage_and_posts_nothing(
    slack: LocalSlack, bot: BotServer
) -> None:
    delivery = await slack.slash("alice", "general", "/opsbot <!channel> frobnicate")
    assert delivery.ok
    replies = await slack.wait_for(lambda: slack.ephemerals("alice", "general"))
    assert "I don't know `/opsbot &lt;!channel&gt;`" in replies[-1].text
    assert "/opsbot help" in replies[-1].text
    assert slack.messages("general") == []


@pytest.mark.parametrize("tamper", ["bad_signature", "stale_timestamp"])
async def test_forged_or_stale_requests_get_401_and_do_nothing(
    slack: LocalSlack, http_bot: BotServer, tamper: str
) -> None:
    delivery = await slack.slash("alice", "incident-response", "/opsbot help", tamper=tamper)  # type: ignore[arg-type]
    assert delivery.status == 401
    assert slack.ephemerals("alice") == []
    metrics = http_bot.runtime.metrics.render().decode() if http_bot.runtime else ""
    assert 'opsbot_slack_requests_total{kind="command",outcome="rejected"} 1.0' in metrics


async def test_malformed_body_is_400_not_500(slack: LocalSlack, http_bot: BotServer) -> None:
    import aiohttp

    body = b'{"type": "event_callback", "event": '
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            http_bot.url + "/slack/events", data=body, headers={"Content-Type": "application/json"}
        ) as response,
    ):
        assert response.status == 400


def mention() -> dict[str, str]:
    return {
        "type": "app_mention",
        "user": "U0ALICE",
        "text": "<@U0OPSBOT> hello",
        "ts": f"1700000000.{uuid.uuid4().int % 1_000_000:06d}",
        "channel": "C0INCIDENT",
    }


async def test_an_event_delivered_twice_is_handled_once_without_redis(
    slack: LocalSlack, http_bot: BotServer
) -> None:
    first = await slack.send_event(mention())
    assert first.ok
    await slack.wait_for(lambda: slack.calls("chat.postMessage"))
    again = await slack.replay_last()
    assert again.status == 200
    await slack.post("alice", "incident-response", "<@U0OPSBOT> are you there?")
    await slack.wait_for(lambda: len(slack.calls("chat.postMessage")) >= 2)
    assert len(slack.calls("chat.postMessage")) == 2, "the replayed event produced a second reply"
    assert http_bot.runtime is not None
    assert "opsbot_duplicate_deliveries_total" in http_bot.runtime.metrics.render().decode()


@pytest.fixture
def two_bot_processes(
    slack: LocalSlack, database_url: str, tmp_path: Path, redis_url: str
) -> Iterator[list[str]]:
    """Two `opsbot serve` processes sharing PostgreSQL and Redis; yields their /slack/events URLs."""
    procs, urls = [], []
    for n in range(2):
        data_dir = tmp_path / f"bot{n}"
        data_dir.mkdir()
        env = {**os.environ, **bot_env(slack, database_url, data_dir, REDIS_URL=redis_url)}
        proc = subprocess.Popen(
            [OPSBOT, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        assert match, line
        urls.append(match.group(1) + "/slack/events")
    yield urls
    for proc in procs:
        proc.terminate()
    for proc in procs:
        assert proc.wait(30) == 0


async def test_an_event_delivered_to_two_replicas_is_handled_once_with_redis(
    slack: LocalSlack, two_bot_processes: list[str]
) -> None:
    first_url, second_url = two_bot_processes
    slack.request_url = first_url
    assert (await slack.send_event(mention())).ok
    second = await slack.replay_last(to=second_url)
    assert second.status == 200
    # A different event through the second replica proves it is live and replying.
    slack.request_url = second_url
    assert (await slack.send_event(mention())).ok
    await slack.wait_for(lambda: len(slack.calls("chat.postMessage")) >= 2, timeout=10)
    assert len(slack.calls("chat.postMessage")) == 2


async def test_socket_mode_bot_answers_over_the_websocket(
    slack: LocalSlack, database_url: str, data_dir: Path
) -> None:
    async with running_bot(slack, database_url, data_dir, socket_mode=True) as server:
        assert server.mode == "socket"
        delivery = await slack.slash("bob", "incident-response", "/opsbot")
        assert delivery.transport == "socket"
        replies = await slack.wait_for(lambda: slack.ephemerals("bob"))
        assert "What opsbot can do" in str(replies[-1].blocks)


async def test_logs_are_json_lines_with_slack_context_and_no_secrets(
    slack: LocalSlack, database_url: str, tmp_path: Path
) -> None:
    log_path = tmp_path / "bot.log"
    env = {**os.environ, **bot_env(slack, database_url, tmp_path, OPSBOT_LOG_FORMAT="auto")}
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [OPSBOT, "serve"], env=env, stdout=subprocess.PIPE, stderr=log_file, text=True
        )
        assert proc.stdout is not None
        match = re.search(r"(http://127\.0\.0\.1:\d+)", proc.stdout.readline())
        assert match
        slack.request_url = match.group(1) + "/slack/events"
        assert (await slack.send_event(mention())).ok
        assert (await slack.replay_last()).ok
        proc.terminate()
        assert proc.wait(30) == 0
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    dropped = [r for r in records if r["event"] == "duplicate_delivery_dropped"]
    assert len(dropped) == 1
    assert dropped[0]["slack_user"] == "U0ALICE"
    assert dropped[0]["slack_channel"] == "C0INCIDENT"
    assert dropped[0]["kind"] == "event:app_mention"
    text = log_path.read_text()
    assert slack.bot_token not in text
    assert slack.signing_secret not in text

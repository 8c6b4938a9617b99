"""Property: whatever anyone types after any of the bot's slash commands, the bot answers within
Slack's rules and never fails unhandled.

Commands, subcommands and parameter names come from the command catalogue the bot builds from the
shipped runbooks; values are hostile payloads, random text and values that pass validation (so real
diagnoses run against the simulated system too). One bot serves every example.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.server import BotServer
from localslack import LocalSlack
from tests.security.conftest import BotLogs, broadcasts, refused_replies
from tests.security.inputs import COMMANDS, FUZZED, command_lines

pytestmark = pytest.mark.asyncio(loop_scope="module")

USERS = ("alice", "bob", "carol", "dave")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def channels(module_slack: LocalSlack, catalogue_bot: BotServer) -> AsyncIterator[list[str]]:
    """Where commands are typed: the incident channel, an ordinary one, and an open incident's own."""
    slack = module_slack
    await slack.slash("alice", "incident-response", "/incident declare p3 fuzzing target")
    channel = await slack.wait_for(
        lambda: next((c for c in slack.state.channels.values() if c.name.startswith("inc-")), None),
        timeout=30,
    )
    for user in USERS:
        member = slack.user(user).id
        if member not in channel.members:
            channel.members.append(member)
    yield ["incident-response", "general", channel.name]


async def drained(bot: BotServer, timeout: float = 60.0) -> None:
    """Wait for the diagnoses, declarations and reviews the commands started."""
    assert bot.runtime is not None
    deadline = asyncio.get_running_loop().time() + timeout
    while len(bot.runtime.tasks) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    assert len(bot.runtime.tasks) == 0, "background work still running"


@pytest.mark.asyncio(loop_scope="module")
async def test_every_command_family_is_in_the_fuzzed_set() -> None:
    names = {c.command for c in COMMANDS}
    assert {
        "/opsbot",
        "/incident",
        "/runbook",
        "/approvals",
        "/db",
        "/cache",
        "/health",
        "/diagnose",
    } <= names


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(line=command_lines(), user=st.sampled_from(USERS), where=st.integers(0, 2))
async def test_any_text_after_any_command_is_answered_within_slacks_rules(
    module_slack: LocalSlack,
    channels: list[str],
    bot_logs: BotLogs,
    line: tuple[str, str],
    user: str,
    where: int,
) -> None:
    command, text = line
    delivery = await module_slack.slash(user, channels[where], f"{command} {text}")
    FUZZED["slash command texts"] += 1
    assert delivery.status == 200, (command, text, delivery.status, delivery.body[:300])
    assert delivery.user_error is None, (command, text, delivery.user_error)


async def test_review_drafts_asked_for_at_once_each_get_a_version(
    module_slack: LocalSlack, catalogue_bot: BotServer, channels: list[str], bot_logs: BotLogs
) -> None:
    """Fuzzing found this one: two drafts at once both took the next version number."""
    logged = bot_logs.mark()
    incident_channel = channels[2]
    before = len(module_slack.files_in(incident_channel))
    asked = await asyncio.gather(
        *(module_slack.slash(user, incident_channel, "/incident postmortem") for user in USERS)
    )
    assert all(delivery.ok for delivery in asked)
    await module_slack.wait_for(
        lambda: len(module_slack.files_in(incident_channel)) >= before + len(USERS), timeout=30
    )
    await drained(catalogue_bot)
    assert bot_logs.failures(logged) == []


async def test_nothing_the_commands_started_failed_or_was_refused_by_slack(
    module_slack: LocalSlack, catalogue_bot: BotServer, bot_logs: BotLogs
) -> None:
    await drained(catalogue_bot)
    assert refused_replies(module_slack) == []
    assert broadcasts(module_slack) == []
    failures = sorted(set(bot_logs.failures()))
    assert failures == [], "\n".join(failures)
    assert FUZZED["slash command texts"] >= 400

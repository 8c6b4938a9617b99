"""Slack's Web API rate-limits, fails or answers too late: every message arrives, and only once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from localslack import LocalSlack
from tests.conftest import running_bot


def _posted(slack: LocalSlack) -> int:
    """Replies that landed in the channel or its threads (not attempts)."""
    channel = slack.state.channel("incident-response")
    return sum(1 for m in channel.messages.values() if m.user == slack.bot_user_id)


async def _ask(slack: LocalSlack, text: str) -> None:
    """alice mentions the bot; it answers in the message's thread."""
    await slack.post("alice", "incident-response", f"<@{slack.bot_user_id}> {text}")


async def _settled(slack: LocalSlack, expected: int, timeout: float = 15) -> None:
    await slack.wait_for(lambda: _posted(slack) >= expected, timeout=timeout)
    await asyncio.sleep(1.0)  # a duplicate would land well within this
    assert _posted(slack) == expected


async def test_rate_limited_posts_wait_for_retry_after_and_arrive_once_each(
    slack: LocalSlack, database_url: str, data_dir: Path
) -> None:
    async with running_bot(slack, database_url, data_dir):
        # Harder than Slack's usual pace of a post a second, which the bot keeps on its own.
        slack.faults.rate_limit("chat.postMessage", calls=1, per_seconds=2)
        for n in range(3):
            await _ask(slack, f"question {n}")
        await _settled(slack, 3)
        assert slack.calls("chat.postMessage", ok=False), "the limit never bit; the test proves nothing"


async def test_server_errors_are_retried_and_the_message_arrives_once(
    slack: LocalSlack, database_url: str, data_dir: Path
) -> None:
    async with running_bot(slack, database_url, data_dir):
        slack.faults.fail_next("chat.postMessage", times=2, status=500, error="fatal_error")
        await _ask(slack, "are you there")
        await _settled(slack, 1)
        assert len(slack.calls("chat.postMessage")) == 3


async def test_a_post_answered_too_late_is_found_not_sent_again(
    slack: LocalSlack, database_url: str, data_dir: Path
) -> None:
    async with running_bot(slack, database_url, data_dir, OPSBOT_SLACK_TIMEOUT="1"):
        slack.faults.answer_late("chat.postMessage", seconds=2.5)
        await _ask(slack, "slow slack")
        await asyncio.sleep(5.0)  # past the late answer and any re-post it could have caused
        assert _posted(slack) == 1, "the post that timed out was sent again"
        assert slack.calls("conversations.replies"), "the bot never looked before deciding"


async def test_a_post_that_never_reached_slack_is_sent_again(
    slack: LocalSlack, database_url: str, data_dir: Path
) -> None:
    async with running_bot(slack, database_url, data_dir, OPSBOT_SLACK_TIMEOUT="1"):
        slack.faults.answer_late("chat.postMessage", seconds=2.5)
        slack.faults.fail_next("chat.postMessage", times=1, status=500, error="fatal_error")
        # The late answer is for a call Slack did not carry out: nothing landed, so post again.
        await _ask(slack, "lost post")
        await _settled(slack, 1)

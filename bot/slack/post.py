"""Getting the bot's cards into Slack: post (joining a public channel if needed), attach long output.

Slack-facing but handler-agnostic, so every listener that posts a diagnosis does it the same way.
"""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.logs import get_logger
from bot.render.blocks import Block
from bot.slack.client import post_marker

log = get_logger(__name__)


class PostFailed(Exception):
    """Slack refused the message; `error` is Slack's error name."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


async def post_message(
    client: AsyncWebClient,
    channel: str,
    text: str,
    blocks: list[Block],
    *,
    thread_ts: str | None = None,
    post_id: str | None = None,
) -> str:
    """Post and return the message ts; joins a public channel first if the bot is not in it.

    With `post_id` the message carries a marker it can be found by later (`find_post`), for a
    message whose ts a process may die before storing.
    """
    marker = post_marker(post_id) if post_id else None
    try:
        response = await client.chat_postMessage(
            channel=channel, text=text, blocks=blocks, thread_ts=thread_ts, metadata=marker
        )
    except SlackApiError as exc:
        error = str(exc.response.get("error"))
        if error != "not_in_channel":
            raise PostFailed(error) from None
        try:
            await client.conversations_join(channel=channel)
            response = await client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, thread_ts=thread_ts, metadata=marker
            )
        except SlackApiError as retry_exc:
            raise PostFailed(str(retry_exc.response.get("error"))) from None
    return str(response["ts"])


async def attach_file(
    client: AsyncWebClient, channel: str, thread_ts: str, filename: str, content: str, title: str
) -> None:
    """Upload `content` as a file in the thread (long output that does not fit in a message)."""
    try:
        await client.files_upload_v2(
            channel=channel, thread_ts=thread_ts, filename=filename, title=title, content=content
        )
    except SlackApiError as exc:
        log.warning("file_upload_failed", channel=channel, error=exc.response.get("error"))


async def invite(client: AsyncWebClient, channel: str, user: str) -> None:
    """Add `user` to `channel`; already being there is not a failure."""
    try:
        await client.conversations_invite(channel=channel, users=user)
    except SlackApiError as exc:
        if exc.response.get("error") not in ("already_in_channel", "cant_invite_self"):
            log.warning("invite_failed", channel=channel, error=exc.response.get("error"))

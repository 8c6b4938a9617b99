"""Slack posts that must not be lost: sent at once, or kept in PostgreSQL and sent when Slack is back.

The client already retries what is certainly safe (429 after Retry-After, a 5xx twice, a refused
connection). When Slack is down for longer, a post that nothing else will redo — an action's
result, an announcement, a reminder — becomes a job in the durable queue and is retried with
growing pauses. Every attempt carries the same marker, and the marker is looked up first, so a
post Slack took while its answer was lost is never sent again.
"""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError

from bot.jobs import JobQueue
from bot.logs import get_logger
from bot.mrkdwn import clip
from bot.slack.client import InstrumentedWebClient

log = get_logger(__name__)

TASK = "slack.post"
# Linear backoff: 5 s, 10 s, … — about 35 minutes of Slack outage before a post is given up.
RETRIES = 36
BACKOFF_SECONDS = 5
# Slack errors that say "not now" rather than "never": the same post may succeed later.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "fatal_error", "internal_error", "service_unavailable", "request_timeout"}
)


def transient(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError | aiohttp.ClientError):
        return True
    if isinstance(exc, SlackApiError):
        response = exc.response
        return response.status_code >= 500 or response.get("error") in TRANSIENT_ERRORS
    return False


class Outbox:
    def __init__(self, client: InstrumentedWebClient, jobs: JobQueue) -> None:
        self._client = client
        self._jobs = jobs
        jobs.task(TASK, self._deliver, retries=RETRIES, backoff_seconds=BACKOFF_SECONDS)

    async def post(
        self,
        channel: str,
        text: str,
        *,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
    ) -> str | None:
        """Post now and return its ts; if Slack is unavailable, queue it and return None."""
        body: dict[str, Any] = {"channel": channel, "text": text}
        if blocks:
            body["blocks"] = blocks
        if thread_ts:
            body["thread_ts"] = thread_ts
        post_id = uuid.uuid4().hex
        try:
            response = await self._client.post_once(body, post_id)
        except Exception as exc:
            if not transient(exc):
                raise
            job_id = await self._jobs.defer(TASK, body=body, post_id=post_id)
            log.warning("slack_post_queued", channel=channel, job_id=job_id, error=type(exc).__name__)
            return None
        return str(response["ts"])

    async def say(self, channel: str, text: str) -> str | None:
        """One mrkdwn section (same text as the notification fallback), kept and sent later if Slack
        is down, since nothing else would repeat it."""
        section = {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, 2900)}}
        return await self.post(channel, text, blocks=[section])

    async def _deliver(self, body: dict[str, Any], post_id: str) -> None:
        """One later attempt; raising hands the job back to the queue for the next one."""
        if await self._client.find_post(str(body["channel"]), body.get("thread_ts"), post_id) is not None:
            return
        try:
            await self._client.post_once(body, post_id)
        except SlackApiError as exc:
            if transient(exc):
                raise
            log.error("slack_post_dropped", channel=body["channel"], error=exc.response.get("error"))
            return
        log.info("slack_post_delivered_late", channel=body["channel"], post_id=post_id)

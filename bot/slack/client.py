"""The Slack Web API client: slack_sdk's AsyncWebClient with retries and per-method metrics.

Every call goes out through the outbound scheduler (`bot.slack.scheduler`), which keeps Slack's
budgets, serves a person first and retries 429s after their Retry-After. The client itself retries
only what certainly did nothing (5xx, a refused connection). A
timed-out or dropped chat.postMessage may already be in the channel, so every post carries a
marker in its message metadata, and before posting again the client looks for that marker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.metrics import Metrics
from bot.slack.buckets import MemoryBuckets
from bot.slack.scheduler import NotSent, OutboundScheduler

DEFAULT_API_URL = "https://slack.com/api/"
POST_EVENT_TYPE = "opsbot_post"
AMBIGUOUS_POST_TRIES = 3

T = TypeVar("T")


def post_marker(post_id: str) -> dict[str, Any]:
    """Message metadata that lets a post be found again by `post_id` (pass as `metadata=`)."""
    return {"event_type": POST_EVENT_TYPE, "event_payload": {"post_id": post_id}}


def marked_post_id(message: dict[str, Any]) -> str | None:
    """The `post_id` in a message's (or a post body's) opsbot marker, if it carries one."""
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != POST_EVENT_TYPE:
        return None
    post_id = (metadata.get("event_payload") or {}).get("post_id")
    return str(post_id) if post_id else None


class _ConnectionErrorsExceptPosts(AsyncConnectionErrorRetryHandler):
    """A dropped connection may come after Slack posted the message: posts re-check, not re-send."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if request.url.endswith("/chat.postMessage"):
            return False
        return await super()._can_retry_async(state=state, request=request, response=response, error=error)


def _argument(kwargs: dict[str, Any], name: str) -> str | None:
    """An argument of a call, wherever the SDK put it (JSON body, form data or query string)."""
    for part in ("json", "data", "params"):
        found = kwargs.get(part)
        if isinstance(found, dict) and found.get(name):
            return str(found[name])
    return None


class InstrumentedWebClient(AsyncWebClient):
    """Counts every Web API call by method and outcome, sends each through the outbound scheduler;
    retries 5xx and dropped connections."""

    def __init__(
        self, *, metrics: Metrics, scheduler: OutboundScheduler | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._metrics = metrics
        self.scheduler = scheduler or OutboundScheduler(MemoryBuckets(), metrics)
        # Posts may name a channel (#incident-response); looking a post up needs the channel's id.
        self._channel_ids: dict[str, str] = {}
        self.retry_handlers: list[AsyncRetryHandler] = [
            _ConnectionErrorsExceptPosts(max_retry_count=2),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ]

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        body = kwargs.get("json")
        if api_method == "chat.postMessage" and isinstance(body, dict):
            post_id = marked_post_id(body)
            if post_id is not None or "metadata" not in body:
                unmarked = {k: v for k, v in body.items() if k != "metadata"}
                return await self.post_once(unmarked, post_id or uuid.uuid4().hex, kwargs)
        return await self._counted(api_method, **kwargs)

    async def post_once(
        self, body: dict[str, Any], post_id: str, kwargs: dict[str, Any] | None = None
    ) -> AsyncSlackResponse:
        """chat.postMessage marked with `post_id`; after an answer that never came, look for the
        marker before posting again. Posting the same `post_id` twice lands one message, as long as
        the first is still among the newest in its channel or thread."""
        marked = {**body, "metadata": post_marker(post_id)}
        kwargs = kwargs or {}
        for attempt in range(1, AMBIGUOUS_POST_TRIES + 1):
            try:
                response = await self._counted("chat.postMessage", **{**kwargs, "json": marked})
                self._channel_ids[str(body.get("channel"))] = str(response.get("channel"))
                return response
            except (TimeoutError, aiohttp.ClientError):
                self._metrics.web_api_calls.labels("chat.postMessage", "ambiguous").inc()
                if attempt == AMBIGUOUS_POST_TRIES:
                    raise
                await asyncio.sleep(0.5 * attempt)
                landed = await self.find_post(str(body.get("channel")), body.get("thread_ts"), post_id)
                if landed is not None:
                    return landed
        raise AssertionError("unreachable")

    async def find_post(self, channel: str, thread_ts: Any, post_id: str) -> AsyncSlackResponse | None:
        """The message carrying `post_id`, among the newest in the channel or thread, if Slack has it."""
        channel = self._channel_ids.get(channel, channel)
        params: dict[str, Any] = {"channel": channel, "limit": 50, "include_all_metadata": True}
        if thread_ts:
            params["ts"] = thread_ts
        method = "conversations.replies" if thread_ts else "conversations.history"
        found = await self._counted(method, http_verb="GET", params=params)
        for message in found.get("messages") or []:
            if marked_post_id(message) == post_id:
                data = {"ok": True, "channel": channel, "ts": message["ts"], "message": message}
                return AsyncSlackResponse(
                    client=self,
                    http_verb="POST",
                    api_url=f"{self.base_url}chat.postMessage",
                    req_args={},
                    data=data,
                    headers={},
                    status_code=200,
                )
        return None

    async def update_when_due(
        self, channel: str, ts: str, draw: Callable[[], Awaitable[dict[str, Any] | None]]
    ) -> AsyncSlackResponse | None:
        """chat.update of one message whose content (`text`, `blocks`) `draw` makes once the budget
        allows the call, not when it starts to wait: a card that waited a minute for Slack's budget
        shows the newest state, not the one of a minute ago. `draw` answers None when the message
        already shows it, and then nothing is sent (None)."""
        channel = self._channel_ids.get(channel, channel)

        async def call() -> AsyncSlackResponse | None:
            content = await draw()
            if content is None:
                return None
            return await self._call("chat.update", {"json": {**content, "channel": channel, "ts": ts}})

        return await self._scheduled("chat.update", channel, call, merge_key=f"{channel}:{ts}")

    async def close(self) -> None:
        await self.scheduler.close()
        if self.session is not None and not self.session.closed:
            await self.session.close()

    async def _counted(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        channel = _argument(kwargs, "channel")
        # One channel, one budget, whether a call names it or gives its id (Slack paces the channel).
        channel = self._channel_ids.get(channel, channel) if channel else channel
        merge_key = None
        if api_method == "chat.update":
            ts = _argument(kwargs, "ts")
            merge_key = f"{channel}:{ts}" if channel and ts else None
        return await self._scheduled(
            api_method, channel, lambda: self._call(api_method, kwargs), merge_key=merge_key
        )

    async def _scheduled(
        self,
        api_method: str,
        channel: str | None,
        call: Callable[[], Awaitable[T]],
        merge_key: str | None,
    ) -> T:
        """`call` once the scheduler grants it; a call that waited past its patience is Slack's 429."""
        try:
            return await self.scheduler.send(api_method, channel, call, merge_key=merge_key)
        except NotSent:
            self._metrics.web_api_calls.labels(api_method, "not_sent").inc()
            raise SlackApiError(  # type: ignore[no-untyped-call]
                f"{api_method} not sent: Slack's rate limit held it too long", self._refused(api_method)
            ) from None

    def _refused(self, api_method: str) -> AsyncSlackResponse:
        return AsyncSlackResponse(
            client=self,
            http_verb="POST",
            api_url=f"{self.base_url}{api_method}",
            req_args={},
            data={"ok": False, "error": "ratelimited"},
            headers={},
            status_code=429,
        )

    async def _call(self, api_method: str, kwargs: dict[str, Any]) -> AsyncSlackResponse:
        try:
            response = await super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            self._metrics.web_api_calls.labels(api_method, str(error or "error")).inc()
            raise
        except Exception:
            self._metrics.web_api_calls.labels(api_method, "exception").inc()
            raise
        self._metrics.web_api_calls.labels(api_method, "ok").inc()
        return response


def create_web_client(
    token: str | None,
    api_url: str | None,
    metrics: Metrics,
    timeout: float = 10.0,
    scheduler: OutboundScheduler | None = None,
) -> InstrumentedWebClient:
    """Call from a running event loop: the client keeps one HTTP session (pooled keep-alive
    connections) instead of opening a session per call, as slack_sdk does without one.
    Without a `scheduler`, this process keeps Slack's budgets on its own."""
    base_url = api_url or DEFAULT_API_URL
    if not base_url.endswith("/"):
        base_url += "/"
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))
    return InstrumentedWebClient(
        token=token,
        base_url=base_url,
        metrics=metrics,
        timeout=int(timeout),
        session=session,
        scheduler=scheduler,
    )

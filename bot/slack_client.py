"""The Slack Web API client: slack_sdk's AsyncWebClient with retries and per-method metrics."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.metrics import Metrics

DEFAULT_API_URL = "https://slack.com/api/"


class InstrumentedWebClient(AsyncWebClient):
    """Counts every Web API call by method and outcome; retries 429s, 5xx and dropped connections."""

    def __init__(self, *, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._metrics = metrics
        self.retry_handlers = [
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ]

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
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


def create_web_client(token: str | None, api_url: str | None, metrics: Metrics) -> InstrumentedWebClient:
    base_url = api_url or DEFAULT_API_URL
    if not base_url.endswith("/"):
        base_url += "/"
    return InstrumentedWebClient(token=token, base_url=base_url, metrics=metrics, timeout=10)

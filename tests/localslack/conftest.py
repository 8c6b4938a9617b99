"""Fixtures for the localslack suite: a running emulator, an SDK client pointed at it, a bolt app server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from localslack import LocalSlack, Timing

FAST = Timing(ack_timeout=1.0, trigger_ttl=3.0, retry_delays=(0.05, 0.1, 0.1))


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # slack_sdk turns HTTP(S)_PROXY into an explicit proxy that ignores NO_PROXY, even for 127.0.0.1.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def slack() -> AsyncIterator[LocalSlack]:
    async with LocalSlack.running(timing=FAST) as s:
        yield s


@pytest.fixture
def client(slack: LocalSlack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


@asynccontextmanager
async def serve_bolt(app: AsyncApp) -> AsyncIterator[str]:
    """Serves the bolt app's own aiohttp application on a free loopback port; yields its /slack/events URL."""
    async with serve_web_app(app.web_app(path="/slack/events")) as url:
        yield url


@asynccontextmanager
async def serve_handler(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """Serves a bare aiohttp handler as the app's request URL, for protocol-level checks without bolt."""
    app = web.Application()
    app.router.add_post("/slack/events", handler)
    async with serve_web_app(app) as url:
        yield url


@asynccontextmanager
async def serve_web_app(application: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(application)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/slack/events"
    finally:
        await runner.cleanup()


@pytest.fixture
def make_bolt(slack: LocalSlack) -> Callable[..., AsyncApp]:
    def factory(**kwargs: object) -> AsyncApp:
        return AsyncApp(
            token=slack.bot_token,
            signing_secret=slack.signing_secret,
            client=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url),
            **kwargs,  # type: ignore[arg-type]
        )

    return factory

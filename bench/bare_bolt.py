"""The baseline: a bare slack_bolt AsyncApp whose listeners only ack, served the way opsbot serves.

Same framework, same aiohttp adapter (`to_bolt_request` / `to_aiohttp_response` on one route),
same Socket Mode handler, same signature checks and authorization middleware, and nothing else:
the difference between this and opsbot under the same load is what opsbot adds.

It runs on the event loop `opsbot serve` would run on with the same environment (OPSBOT_EVENT_LOOP:
uvloop unless "asyncio"), so the two are compared on the same loop.

    python -m bench.bare_bolt   # reads SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_API_URL,
                                # SLACK_APP_TOKEN (Socket Mode when set), OPSBOT_PORT, OPSBOT_EVENT_LOOP
"""

from __future__ import annotations

import asyncio
import os
import re
import signal

import uvloop
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


def build_app(token: str, signing_secret: str, api_url: str) -> AsyncApp:
    app = AsyncApp(
        client=AsyncWebClient(token=token, base_url=api_url),
        signing_secret=signing_secret,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )

    # One listener per kind of delivery the benchmark sends, so none of them is a 404.
    @app.command(re.compile(r"^/"))
    async def command(ack: AsyncAck) -> None:
        await ack()

    @app.action(re.compile(r".+"))
    async def action(ack: AsyncAck) -> None:
        await ack()

    @app.event(re.compile(r".+"))
    async def event() -> None:
        return None

    return app


def build_web_app(app: AsyncApp | None) -> web.Application:
    web_app = web.Application()

    async def slack_events(request: web.Request) -> web.Response:
        assert app is not None
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    if app is not None:
        web_app.router.add_post("/slack/events", slack_events)
    web_app.router.add_get("/health", health)
    return web_app


async def serve() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    app = build_app(
        os.environ["SLACK_BOT_TOKEN"], os.environ["SLACK_SIGNING_SECRET"], os.environ["SLACK_API_URL"]
    )
    app_token = os.environ.get("SLACK_APP_TOKEN")
    runner = web.AppRunner(build_web_app(None if app_token else app), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(os.environ.get("OPSBOT_PORT", "0"))).start()
    socket = AsyncSocketModeHandler(app, app_token) if app_token else None
    if socket is not None:
        await socket.connect_async()  # type: ignore[no-untyped-call]
    try:
        await stop.wait()
    finally:
        if socket is not None:
            await socket.close_async()  # type: ignore[no-untyped-call]
        await runner.cleanup()


if __name__ == "__main__":
    factory = None if os.environ.get("OPSBOT_EVENT_LOOP") == "asyncio" else uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve())

"""Running the bot: start the runtime, the HTTP server and (optionally) Socket Mode; stop cleanly.

Shutdown order matters: stop taking requests first, then let tracked background work finish,
then close pools and the embedded database.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import uvloop
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

from bot.app import OpsbotApp, build_bolt_app, build_web_app
from bot.config import Settings
from bot.logs import get_logger
from bot.runtime import Runtime

log = get_logger(__name__)


@dataclass
class BotServer:
    """The bot as a server object: `start()` then `stop()`; used by `opsbot serve` and by tests."""

    settings: Settings
    runtime: Runtime | None = None
    bolt: OpsbotApp | None = None
    url: str = ""
    startup_seconds: float = 0.0
    _runner: web.AppRunner | None = field(default=None, repr=False)
    _socket: AsyncSocketModeHandler | None = field(default=None, repr=False)

    async def start(self) -> str:
        started = time.perf_counter()
        self.runtime = await Runtime.start(self.settings)
        if self.settings.slack_bot_token is not None:
            self.bolt = build_bolt_app(self.runtime)
        http_bolt = self.bolt if not self.settings.socket_mode else None
        self._runner = web.AppRunner(
            build_web_app(self.runtime, http_bolt),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=5.0,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        if self.bolt is not None and self.settings.slack_app_token is not None:
            self._socket = AsyncSocketModeHandler(self.bolt, self.settings.slack_app_token.get_secret_value())
            await self._socket.connect_async()  # type: ignore[no-untyped-call]
        self.startup_seconds = time.perf_counter() - started
        # Everything loaded so far (Bolt, handlers, catalogue, pools) lives as long as the process:
        # keep it out of the collector's scans so collections stay short under load.
        gc.freeze()
        # Fewer, larger young-generation collections: the request path allocates many short-lived
        # dicts, and every collection pauses the event loop that also answers Slack.
        gc.set_threshold(20_000, 20, 20)
        log.info(
            "opsbot_ready",
            url=self.url,
            mode=self.mode,
            event_loop=type(asyncio.get_running_loop()).__module__.split(".")[0],
            startup_seconds=round(self.startup_seconds, 3),
            missing=self.settings.missing_for_slack(),
        )
        return self.url

    @property
    def mode(self) -> str:
        if self.bolt is None:
            return "no-slack"
        return "socket" if self._socket is not None or self.settings.socket_mode else "http"

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        if self._runner is not None:
            # Stops accepting connections and lets in-flight requests finish before we drain tasks.
            await self._runner.cleanup()
            self._runner = None
        if self.runtime is not None:
            await self.runtime.close()
            self.runtime = None
        log.info("opsbot_stopped")


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop `opsbot serve` runs on: uvloop's, or asyncio's own (None) for "asyncio"."""
    return None if choice == "asyncio" else uvloop.new_event_loop


async def serve(settings: Settings, *, announce: bool = True) -> None:
    """`opsbot serve`: run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = BotServer(settings)
    await server.start()
    if announce:
        print(describe(server), flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()


def describe(server: BotServer) -> str:
    """What a person starting the bot needs to know, in a few lines."""
    lines = [
        f"opsbot is up in {server.startup_seconds:.2f}s: {server.url}  (mode: {server.mode})",
        f"  health {server.url}/health · ready {server.url}/ready · metrics {server.url}/metrics",
    ]
    if server.mode == "http":
        lines.append(f"  Slack request URL: {server.url}/slack/events")
    if server.runtime is not None and server.runtime.embedded is not None:
        lines.append(f"  database: embedded PostgreSQL in {server.runtime.embedded.pgdata}")
    missing = server.settings.missing_for_slack()
    if missing:
        lines.append(
            "  not connected to Slack: set " + ", ".join(missing) + " (and SLACK_API_URL for localslack)"
        )
    return "\n".join(lines)

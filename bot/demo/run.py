"""`opsbot demo` in the foreground: start the workspace, print one URL, stop everything on Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path

from bot.demo.workspace import DemoWorkspace


def _usable(port: int) -> int:
    """`port` if it is free on loopback, else 0 (any free port) so a busy 8080 never stops the demo."""
    if port == 0:
        return 0
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            print(f"Port {port} is taken; using a free port instead.", flush=True)
            return 0
    return port


async def _announce_alert_source(demo: DemoWorkspace) -> None:
    """Say what sends the demo's alerts once it is known (it starts in the background)."""
    await demo.alerts.ready.wait()
    print(demo.alerts.source, flush=True)


async def run_demo(data_dir: Path, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("Starting the opsbot demo: PostgreSQL, Redis, a sick system, local Slack and the bot…", flush=True)
    started = time.perf_counter()
    async with DemoWorkspace.running(data_dir, port=_usable(port)) as demo:
        print(
            f"\nReady in {time.perf_counter() - started:.1f} s. Open {demo.url}\n"
            "Follow the first message in #incident-response. Ctrl-C stops everything.",
            flush=True,
        )
        print(
            f"Alerts in: point any Alertmanager at {demo.alerts.receiver_url} "
            f"with Authorization: Bearer {demo.alerts.token}",
            flush=True,
        )
        announce = asyncio.create_task(_announce_alert_source(demo))
        await stop.wait()
        announce.cancel()
        print("Stopping…", flush=True)
    print("Stopped.", flush=True)

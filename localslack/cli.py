"""Command line entry point: serve one workspace until SIGINT/SIGTERM and print how to reach it."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from localslack.emulator import LocalSlack


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="localslack", description="Run a local Slack emulator on loopback.")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    p.add_argument(
        "--request-url",
        default=None,
        help="the app's /slack/events URL; without it deliveries use Socket Mode",
    )
    p.add_argument(
        "--no-rate-limits",
        dest="rate_limits",
        action="store_false",
        help="answer every Web API call; by default Slack's rate limits apply (429 + Retry-After)",
    )
    return p


async def _serve(host: str, port: int, request_url: str | None, rate_limits: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with LocalSlack.running(
        host=host, port=port, request_url=request_url, rate_limits=rate_limits
    ) as slack:
        print(f"localslack listening on {slack.url}", flush=True)
        print(f"# open the Slack-like web client at {slack.url}/?as=alice", flush=True)
        print("# give the bot these environment variables:", flush=True)
        for key, value in slack.env().items():
            print(f"{key}={value}", flush=True)
        mode = f"HTTP to {request_url}" if request_url else "Socket Mode"
        print(f"# deliveries: {mode}", flush=True)
        limits = "Slack's (429 + Retry-After)" if rate_limits else "off (--no-rate-limits)"
        print(f"# rate limits: {limits}", flush=True)
        await stop.wait()
    print("localslack stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        asyncio.run(_serve(args.host, args.port, args.request_url, args.rate_limits))
    except ValueError as exc:
        print(f"localslack: {exc}", file=sys.stderr)
        return 2
    return 0

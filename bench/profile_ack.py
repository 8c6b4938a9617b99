"""Profiles opsbot's ack path: `opsbot serve` under pyinstrument while `/opsbot help` arrives over
HTTP or Socket Mode as fast as it is acked (or the on-call storm with --storm). localslack runs
without Slack's rate limits unless --slack-limits real. Writes the profile to
bench/results/profile_<scenario>_<transport>.txt and prints its top.

    python -m bench.profile_ack [--requests 20000] [--storm [--rate 200]] [--transport http|socket]

The storm at its benchmark rate (200/s) saturates the profiled process (pyinstrument roughly doubles
the CPU a request costs), and a saturated bot profiles its overload — pool timeouts and their
reports — rather than its work; `--rate 100` profiles the same mix below saturation.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg

from bench.common import RESULTS, machine_postgres, machine_redis
from bench.loadgen import Completions, HttpSender, Sender, SocketSender, closed_loop, open_loop, summarize
from bench.procs import opsbot_argv, running_app
from bench.slack_load import GROUPS, STORM_RATE, Incident, Workload, open_incident
from bench.slackside import socket_deliver, storm_seed, storm_user, watch_replies
from bot.demo.system import SickSystem
from bot.logs import configure_logging
from handlers import subscribed_events
from localslack import LocalSlack


async def main(requests: int, storm: bool, transport: str, limits: bool, rate: float) -> None:
    admin = machine_postgres()
    redis_url = machine_redis()
    names = [f"opsbot_profile_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    store, app_db = (admin.rsplit("/", 1)[0] + "/" + name for name in names)
    workdir = Path(tempfile.mkdtemp(prefix="opsbot-profile-"))
    scenario = "storm" if storm else "help"
    RESULTS.mkdir(exist_ok=True)
    report = RESULTS / f"profile_{scenario}_{transport}"
    argv = [
        sys.executable,
        "-m",
        "pyinstrument",
        "-r",
        "text",
        "--show-all",
        "-o",
        f"{report}.txt",
        *opsbot_argv(),
    ]
    try:
        async with (
            SickSystem.running(postgres_dsn=app_db, redis_url=redis_url, workdir=workdir / "sick") as system,
            LocalSlack.running(
                storm_seed(subscribed_events(), [storm_user(i) for i in GROUPS["approve"]]),
                rate_limits=limits,
            ) as slack,
        ):
            socket = transport == "socket"
            env = {
                **{k: v for k, v in slack.env().items() if socket or k != "SLACK_APP_TOKEN"},
                "DATABASE_URL": store,
                "REDIS_URL": redis_url,
                "OPSBOT_TARGETS": str(system.targets_file),
                "OPSBOT_DATA_DIR": str(workdir),
                "OPSBOT_LOG_FORMAT": "json",
                "OPSBOT_LOG_LEVEL": "info",
                "OPSBOT_DEDUPE_TTL": "60",
                "OPSBOT_SLACK_BUDGET_SCALE": "1" if limits else "1000",
                "PATH": system.path_env,
            }
            if socket:
                slack.use_socket_mode()
            async with running_app("opsbot-profiled", argv, env, workdir=workdir, stop_s=300) as app:
                sender: Sender
                if socket:
                    await slack.wait_for_socket(1, 30)
                    sender = SocketSender(socket_deliver(slack))
                else:
                    slack.request_url = app.url + "/slack/events"
                    sender = HttpSender(app.url + "/slack/events", slack.signing_secret)
                await sender.start()
                try:
                    figures = await _load(slack, system, sender, requests, storm, rate)
                finally:
                    await sender.close()
            print(
                f"{scenario} over {transport}: {figures['sent']} requests, {figures['errors']} errors, "
                f"ack p50 {figures['ack']['p50_ms']:.1f} ms, p99 {figures['ack']['p99_ms']:.1f} ms, "
                f"{figures['throughput_per_s']:.0f}/s (under the profiler)"
            )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)
    text = await asyncio.to_thread(Path(f"{report}.txt").read_text)
    print("\n".join(text.splitlines()[:120]))
    print(f"profile: {report}.txt")


async def _load(
    slack: LocalSlack, system: SickSystem, sender: Sender, requests: int, storm: bool, rate: float
) -> dict[str, Any]:
    if not storm:
        lobby = Incident(channel=slack.channel("incident-response").id, cards=[])
        work = Workload(slack, lobby, replies=True, tag="profile")
        return summarize(await closed_loop(sender, work.help, concurrency=32, count=requests, max_s=600))
    incident = await open_incident(slack, system)
    work = Workload(slack, incident, replies=True, tag="profile")
    completions = Completions()
    async with watch_replies(slack, completions):
        run = await open_loop(
            sender, work.storm, rate=rate, duration_s=requests / rate, completions=completions
        )
    return summarize(run)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--storm", action="store_true", help="profile the mixed on-call storm instead")
    parser.add_argument("--rate", type=float, default=STORM_RATE, help="storm requests per second")
    parser.add_argument("--transport", choices=("http", "socket"), default="http")
    parser.add_argument(
        "--slack-limits", choices=("real", "off"), default="off", help="Slack's Web API rate limits"
    )
    args = parser.parse_args()
    configure_logging("warning", "console")
    asyncio.run(main(args.requests, args.storm, args.transport, args.slack_limits == "real", args.rate))

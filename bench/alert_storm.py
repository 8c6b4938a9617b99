"""Benchmark (issue #19): an alert storm under Slack's real rate limits while a person works.

`opsbot serve` runs as a child process against localslack (in this process, Slack's per-method
budgets on), the machine's PostgreSQL (fresh databases) and Redis, with alert routes for five public
channels. Alertmanager-format notifications arrive at 1,000 alerts/min (alerts carried, see
`bench.alert_storm_plan`) for 5 minutes across 50 groups, 10 per channel, while dave types
`/db connections` every 3 s and bob approves an action alice requested every 5 s.

Reported: alert → first card (notification sent → card in localslack); how long after the last
notification every card shows its group's last state (read from the card's Status and Alerts
fields); the person's reply latency; the bot's Web API calls per method against the emulator's
budget, and its 429s; messages per group (card + thread replies); lost updates (cards never showing
the last state within 5 minutes of the last notification); the bot's peak RSS and CPU; the load average.

    python -m bench.alert_storm            # 5 minutes of storm, then up to 5 minutes to settle
    python -m bench.alert_storm --quick    # or BENCH_QUICK=1: 1 minute of storm

Exit code 0 whatever the figures say (it is a report), 1 if the run itself broke (the bot died).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench.alert_storm_drive import CardWatch, Notifier, Person
from bench.alert_storm_plan import last_states, storm_script
from bench.alert_storm_report import Observed, figures_of, print_report
from bench.alert_storm_world import bot_env, calls_by_method, limited_slack, storm_seed
from bench.common import machine_postgres, machine_redis, save
from bench.loadgen import Completions, HttpSender
from bench.procs import AppProcess, RssSampler, opsbot_argv, running_app
from bench.slackside import watch_replies
from bot.demo.system import SickSystem
from bot.logs import configure_logging
from handlers import subscribed_events
from localslack import LocalSlack

ALERTS_PER_MIN = 1000.0
GROUPS = 50
# A card that shows its group's last state this long after the last notification was late; one
# that never does within it is a lost update.
SETTLE_S = 300.0
REPLY_SETTLE_S = 15.0
DB_EVERY_S = 3.0
APPROVE_EVERY_S = 5.0
PERSON_CHANNEL = "incident-response"


@contextlib.asynccontextmanager
async def background(coro: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Runs `coro` while the block runs; if it failed meanwhile, its error is the block's."""
    task = asyncio.create_task(coro)
    try:
        yield
    finally:
        task.cancel()
        (outcome,) = await asyncio.gather(task, return_exceptions=True)
        if not isinstance(outcome, asyncio.CancelledError | None):
            raise outcome


async def _settle(watch: CardWatch, notifier: Notifier) -> None:
    """Until every card shows its group's last accepted state, or SETTLE_S after the last notification."""
    finals = {g: sent[-1].state for g, sent in notifier.accepted.items()}
    last = max((sent[-1].at for sent in notifier.accepted.values()), default=time.perf_counter())
    while time.perf_counter() < last + SETTLE_S:
        if all(watch.shows(g) == state for g, state in finals.items()):
            return
        await asyncio.sleep(0.1)


async def storm(
    slack: LocalSlack, app: AppProcess, token: str, minutes: float, system: SickSystem
) -> Observed:
    steps = storm_script(ALERTS_PER_MIN, minutes, GROUPS)
    notifier = Notifier(app.url + "/alerts/alertmanager", token, steps, datetime.now(UTC))
    watch = CardWatch(slack)
    sender = HttpSender(app.url + "/slack/events", slack.signing_secret)
    person = Person(slack, sender, PERSON_CHANNEL, system.leak_connections)
    completions = Completions()
    duration = minutes * 60
    await sender.start()
    app.reset_peak()
    cpu, since, t0 = app.cpu_seconds(), time.time(), time.perf_counter()
    try:
        async with RssSampler([app]), watch_replies(slack, completions), background(watch.watch()):
            await asyncio.gather(
                notifier.run(t0),
                person.type_db(completions, duration, DB_EVERY_S),
                person.approve(duration, APPROVE_EVERY_S),
            )
            await completions.settle(REPLY_SETTLE_S)
            await _settle(watch, notifier)
            watch.poll()
    finally:
        await sender.close()
    wall = time.perf_counter() - t0
    return Observed(
        steps=steps,
        finals=last_states(steps),
        notifier=notifier,
        watch=watch,
        person=person,
        calls=calls_by_method(slack.calls(), since),
        peak_rss_mb=app.peak_rss / 2**20,
        cpu_pct=(app.cpu_seconds() - cpu) / wall * 100,
        wall_s=wall,
        alive=app.alive,
        log_tail=app.log_tail(),
    )


async def run(minutes: float, workdir: Path, names: dict[str, str], admin: str) -> Observed:
    redis_url = machine_redis()
    dsn = {k: admin.rsplit("/", 1)[0] + "/" + name for k, name in names.items()}
    token = secrets.token_urlsafe(16)
    data = workdir / "bot"
    data.mkdir()
    async with SickSystem.running(
        postgres_dsn=dsn["app"], redis_url=redis_url, workdir=workdir / "sick"
    ) as system:
        slack, limits = limited_slack(storm_seed(subscribed_events()))
        print(f"rate limits: {limits}", flush=True)
        await slack.start()
        try:
            env = bot_env(slack, dsn=dsn["store"], redis_url=redis_url, data=data, token=token)
            env.update(OPSBOT_TARGETS=str(system.targets_file), PATH=system.path_env)
            async with running_app("opsbot-storm", opsbot_argv(), env, workdir=data) as app:
                slack.request_url = app.url + "/slack/events"
                observed = await storm(slack, app, token, minutes, system)
                observed.limits = limits
                return observed
        finally:
            await slack.stop()


async def main(quick: bool, keep: bool = False) -> int:
    minutes = 1.0 if quick else 5.0
    admin = machine_postgres()
    names = {k: f"opsbot_bench_storm_{k}_{uuid.uuid4().hex[:8]}" for k in ("app", "store")}
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names.values():
            conn.execute(f'CREATE DATABASE "{name}"')
    workdir = Path(tempfile.mkdtemp(prefix="opsbot-storm-"))
    load_before = os.getloadavg()
    print(
        f"alert storm: {ALERTS_PER_MIN:g} alerts/min for {minutes:g} min across {GROUPS} groups", flush=True
    )
    try:
        observed = await run(minutes, workdir, names, admin)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if keep:
            print(f"kept {workdir} (the bot's log is bot/opsbot-storm.log)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    figures = figures_of(observed)
    figures["machine"] = {
        "cpus": psutil.cpu_count(),
        "load_average_at_start": load_before,
        "load_average_at_end": os.getloadavg(),
    }
    figures["plan"] = {"quick": quick, "minutes": minutes, "alerts_per_min": ALERTS_PER_MIN, "groups": GROUPS}
    print_report(figures)
    print(f"results: {save('alert_storm' + ('_quick' if quick else ''), figures)}")
    if not observed.alive:
        print(f"the bot died during the storm:\n{observed.log_tail}", file=sys.stderr)
        return 1
    return 0


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 minute of storm (also BENCH_QUICK=1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory and the bot's log")
    args = parser.parse_args()
    configure_logging("warning", "console")
    quick = args.quick or os.environ.get("BENCH_QUICK") == "1"
    sys.exit(asyncio.run(main(quick, args.keep)))


if __name__ == "__main__":
    cli()

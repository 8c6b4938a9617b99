"""Benchmark: opsbot under Slack load, against a bare Bolt app measured in the same run.

Both apps run as child processes (`opsbot serve` and `python -m bench.bare_bolt`), each with its
own localslack in this process; the load generator (`bench.loadgen`) sends signed HTTP requests or
Socket Mode envelopes and times the ack, and — for opsbot — the reply landing in localslack.
Each scenario drives bare Bolt and opsbot at the same time with the same schedule, so both see the
same machine; only the throughput runs go one after the other, as each takes all the CPU it can.

Scenarios, each over HTTP and over Socket Mode:
  help          `/opsbot help` (the reply is the ack)
  db            `/db connections` (coalesced diagnosis of the real PostgreSQL, card posted)
  declare       `/incident declare p0 …` (channel, card, announcement, P0 diagnosis)
  approve       clicks on "Approve" of pending approval cards (first approves and runs the action,
                later ones are refused in an ephemeral message)
  pin           `reaction_added` 📌 on messages of the P0 channel (timeline entry in the store)
  storm         all of the above plus `/incident note`, 200 on-call engineers at once during a P0
  throughput    `/opsbot help` with 128 in flight, as fast as the app acks (opsbot over HTTP:
                100,000 requests, its RSS after 1,000 and every 10,000)

Slack's Web API rate limits (localslack's budgets) apply to a run with `--slack-limits real`, not with
`off`; by default the storm runs under both and every other scenario without them. The bare Bolt app
makes no Web API calls, so limits touch only opsbot's replies: under real limits the report gives the
replies delivered, their p99 and the 429s localslack answered. Each limited run starts on full budgets.
The bot keeps Slack's budgets itself (its outbound scheduler) whenever a run of the invocation has
them on; `--slack-limits off` measures it without pacing (`OPSBOT_SLACK_BUDGET_SCALE=1000`), as
every run before issue #19 did.

Each opsbot row is compared with the bare Bolt row of the same run: ack p99 ratio and CPU-seconds
per request ratio (the targets: at most 1.5 and 2 times). Both apps run on the same event loop: uvloop, as
`opsbot serve` does, or with `--loop asyncio` asyncio's own.

    python -m bench.slack_load            # full run, about 5 minutes
    python -m bench.slack_load --quick    # or BENCH_QUICK=1: shorter runs, same checks
    python -m bench.slack_load --quick --scenarios storm   # the storm alone, limits off and real
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import dataclasses
import gc
import json
import os
import platform
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
from slack_sdk.web.async_client import AsyncWebClient

from bench.common import RESULTS, machine_postgres, machine_redis, print_table, save
from bench.loadgen import (
    Completions,
    HttpSender,
    Run,
    Sender,
    Shot,
    SocketSender,
    closed_loop,
    open_loop,
    summarize,
)
from bench.procs import AppProcess, RssSampler, bare_bolt_argv, opsbot_argv, running_app
from bench.slackside import (
    Payloads,
    indexed_history,
    reply_key,
    socket_deliver,
    storm_seed,
    storm_user,
    watch_replies,
)
from bot.demo.system import SickSystem
from bot.logs import configure_logging
from bot.render.approval import APPROVE
from handlers import subscribed_events
from localslack import LocalSlack, Message, WorkspaceSeed

REPO = Path(__file__).resolve().parents[1]
STORM_RATE = 200.0
ACK_P99_TARGET_MS = 50.0
RATIO_TARGET = 1.5
CPU_RATIO_TARGET = 2.0
RSS_GROWTH_TARGET = 0.20
APPROVAL_CARDS = 12
TIMELINE_LOOKBACK = 64

# Who does what in the storm: disjoint groups, so a reply to a person names the request it answers.
GROUPS: dict[str, range] = {
    "help": range(0, 60),
    "db": range(60, 100),
    "pin": range(100, 140),
    "approve": range(140, 180),
    "note": range(180, 195),
    "declare": range(195, 200),
}
# Requests per 200 of the storm: one second of it at 200 req/s.
STORM_MIX = {"help": 60, "db": 40, "pin": 40, "approve": 40, "note": 19, "declare": 1}
# Requests per second of each scenario on its own.
RATES = {"help": 200.0, "db": 50.0, "declare": 1.0, "approve": 50.0, "pin": 100.0}


SCENARIOS = ("throughput", *RATES, "storm")


@dataclass(frozen=True)
class Plan:
    quick: bool
    scenario_s: float
    storm_s: float
    throughput_count: int
    leak_count: int
    scenarios: tuple[str, ...] = SCENARIOS
    transports: tuple[str, ...] = ("http", "socket")
    # Slack's rate limits per scenario run: None is the default (the storm under both, others off).
    slack_limits: tuple[str, ...] | None = None
    loop: str = "uvloop"
    # Bolt polls for the listener's ack every 10 ms, so each request takes at least that long:
    # 128 in flight allow ~10,000 acks/s, beyond what either app reaches on two cores.
    concurrency: int = 128

    @staticmethod
    def make(
        quick: bool,
        scenarios: tuple[str, ...],
        transports: tuple[str, ...],
        leak_count: int | None = None,
        slack_limits: tuple[str, ...] | None = None,
        loop: str = "uvloop",
    ) -> Plan:
        plan = (
            Plan(True, 4.0, 8.0, 4_000, 10_000, scenarios, transports, slack_limits, loop)
            if quick
            else Plan(False, 10.0, 30.0, 20_000, 100_000, scenarios, transports, slack_limits, loop)
        )
        return dataclasses.replace(plan, leak_count=leak_count) if leak_count else plan

    def bot_paces(self) -> bool:
        """Does the bot keep Slack's budgets: yes if any run has Slack's limits on. A run without them
        throughout measures the bot without pacing too (the unlimited figures of earlier runs)."""
        return any("real" in self.limits_for(s) for s in self.scenarios)

    def limits_for(self, scenario: str) -> tuple[str, ...]:
        """Off before real: a limited run leaves replies retrying that would load the next run."""
        if self.slack_limits is not None:
            return self.slack_limits
        return ("off", "real") if scenario == "storm" else ("off",)


@dataclass
class Incident:
    channel: str
    cards: list[Message]


class Workload:
    """Builds each scenario's i-th request; `replies` is False for bare Bolt, which answers nothing."""

    def __init__(self, slack: LocalSlack, incident: Incident, *, replies: bool, tag: str) -> None:
        self._slack = slack
        self._p = Payloads(slack)
        self._incident = incident
        self._replies = replies
        self._tag = tag
        self._mix = [name for name, n in STORM_MIX.items() for _ in range(n)]
        # Spread each kind across the second rather than sending 60 helps in a row.
        self._mix = [self._mix[(i * 37) % len(self._mix)] for i in range(len(self._mix))]
        self._storm_counts: dict[str, int] = {}

    def _user(self, group: str, i: int) -> str:
        members = GROUPS[group]
        return storm_user(members[i % len(members)])

    def _shot(self, scenario: str, kind: str, payload: dict[str, Any], key: str | None) -> Shot:
        return Shot(scenario, kind, payload, key=key if self._replies else None)

    def help(self, i: int) -> Shot:
        user = self._user("help", i)
        payload = self._p.slash(user, self._incident.channel, "/opsbot", "help")
        return Shot("help", "slash_commands", payload, reply_in_ack=self._replies)

    def db(self, i: int) -> Shot:
        user = self._user("db", i)
        payload = self._p.slash(user, self._incident.channel, "/db", "connections")
        return self._shot("db", "slash_commands", payload, reply_key(user))

    def declare(self, i: int) -> Shot:
        user = self._user("declare", i)
        text = f"declare p0 {self._tag} checkout is down {i}"
        payload = self._p.slash(user, "incident-response", "/incident", text)
        return self._shot("declare", "slash_commands", payload, reply_key(user))

    def approve(self, i: int) -> Shot:
        user = self._user("approve", i)
        card = self._incident.cards[i % len(self._incident.cards)]
        return self._shot("approve", "interactive", self._p.click(user, card, APPROVE), reply_key(user))

    def pin(self, i: int) -> Shot:
        user = self._user("pin", i)
        channel = self._slack.state.channel(self._incident.channel)
        author = self._user("help", i)
        message = self._slack.state.add_message(channel, user=author, text=f"{self._tag}: saw 502s at {i}")
        payload = self._p.reaction(user, message, "pushpin")
        return self._shot("pin", "events_api", payload, f"pin:{channel.id}:{message.ts}")

    def note(self, i: int) -> Shot:
        user = self._user("note", i)
        payload = self._p.slash(user, self._incident.channel, "/incident", f"note {self._tag} update {i}")
        return self._shot("note", "slash_commands", payload, reply_key(user))

    def storm(self, i: int) -> Shot:
        kind = self._mix[i % len(self._mix)]
        # Each kind counts its own requests, so its group of people takes turns evenly.
        n = self._storm_counts[kind] = self._storm_counts.get(kind, -1) + 1
        shot: Shot = getattr(self, kind)(n)
        shot.scenario = "storm:" + shot.scenario
        return shot


async def watch_timeline(dsn: str, completions: Completions) -> None:
    """Reports each 📌 timeline entry as it appears in the store (polled every 10 ms)."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        row = await (await conn.execute("SELECT coalesce(max(id), 0) FROM timeline_events")).fetchone()
        last = before = int(row[0]) if row else 0
        seen: set[int] = set()
        while True:
            # Ids are taken in insert order but become visible in commit order: look back a little
            # so a row committed after a later one is not skipped.
            rows = await (
                await conn.execute(
                    "SELECT id, source_key FROM timeline_events WHERE id > %s ORDER BY id",
                    (last - TIMELINE_LOOKBACK,),
                )
            ).fetchall()
            now = time.perf_counter()
            for entry_id, source_key in rows:
                if entry_id <= before or entry_id in seen:
                    continue
                seen.add(entry_id)
                last = max(last, int(entry_id))
                if str(source_key).startswith("pin:"):
                    completions.landed(str(source_key), now)
            await asyncio.sleep(0.01)


@asynccontextmanager
async def background(coro: Any) -> AsyncIterator[None]:
    task = asyncio.create_task(coro)
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class Target:
    """One app under test: its process, its localslack, and how to reach it on this transport."""

    def __init__(self, label: str, app: AppProcess, slack: LocalSlack, transport: str, loop: str) -> None:
        self.label = label
        self.app = app
        self.slack = slack
        self.transport = transport
        self.loop = loop
        self.sender: Sender = (
            HttpSender(app.url + "/slack/events", slack.signing_secret)
            if transport == "http"
            else SocketSender(socket_deliver(slack))
        )


@dataclass
class Leg:
    """One app's share of a measurement: the load sent to it and whether it is expected to reply."""

    target: Target
    load: Callable[[Completions | None], Any]
    replies: bool


class Measured:
    """Runs loads against targets at the same time and turns each into a result row."""

    def __init__(self, store_dsn: str) -> None:
        self._store_dsn = store_dsn
        self._me = psutil.Process()

    async def run(
        self, scenario: str, legs: list[Leg], *, rate: float | None, limits: str = "off"
    ) -> list[dict[str, Any]]:
        completions = [Completions() if leg.replies else None for leg in legs]
        for leg in legs:
            leg.target.app.reset_peak()
            if limits == "real":
                leg.target.slack.faults.enable_rate_limits()
        refused_before = [dict(leg.target.slack.faults.refused) for leg in legs]
        # A full collection in this process (the emulator's whole workspace, every shot so far)
        # would stall the generator and be counted as the app's latency.
        gc.collect()
        gc.disable()
        app_cpu = [leg.target.app.cpu_seconds() for leg in legs]
        me_cpu, wall = _cpu(self._me), time.perf_counter()
        try:
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(RssSampler([leg.target.app for leg in legs]))
                for leg, c in zip(legs, completions, strict=True):
                    if c is not None:
                        await stack.enter_async_context(watch_replies(leg.target.slack, c))
                        await stack.enter_async_context(background(watch_timeline(self._store_dsn, c)))
                runs: list[Run] = await asyncio.gather(
                    *(leg.load(c) for leg, c in zip(legs, completions, strict=True))
                )
        finally:
            gc.enable()
            for leg in legs:
                leg.target.slack.faults.disable_rate_limits()
        wall = time.perf_counter() - wall
        rows = []
        for leg, c, run, cpu, refused in zip(legs, completions, runs, app_cpu, refused_before, strict=True):
            app = leg.target.app
            figures = summarize(run)
            app_cpu_s = app.cpu_seconds() - cpu
            figures.update(
                scenario=scenario,
                transport=leg.target.transport,
                app=leg.target.label,
                slack_limits=limits,
                event_loop=leg.target.loop,
                slack_429s=_refused_since(refused, leg.target.slack.faults.refused),
                load_average=os.getloadavg()[0],
                rate_per_s=rate,
                concurrent_with=[other.target.label for other in legs if other is not leg],
                peak_rss_mb=app.peak_rss / 2**20,
                app_cpu_s=app_cpu_s,
                app_cpu_pct=app_cpu_s / wall * 100,
                app_cpu_ms_per_request=app_cpu_s * 1000 / max(1, len(run.shots)),
                generator_cpu_pct=(_cpu(self._me) - me_cpu) / wall * 100,
                generator_rss_mb=self._me.memory_info().rss / 2**20,
                unmatched_replies=c.unmatched if c else 0,
            )
            if not app.alive:
                raise RuntimeError(f"{leg.target.label} died during {scenario}:\n{app.log_tail()}")
            _print_row(figures)
            rows.append(figures)
        return rows


def _refused_since(before: dict[str, int], now: Mapping[str, int]) -> dict[str, int]:
    """429s localslack answered per method during the run."""
    return {m: n - before.get(m, 0) for m, n in sorted(now.items()) if n > before.get(m, 0)}


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def _print_row(f: dict[str, Any]) -> None:
    ack, comp = f["ack"], f["completion"]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    print(
        f"  {f['scenario']:<10} {f['transport']:<6} {f['app']:<8} limits={f['slack_limits']:<4}"
        f" sent={f['sent']:<6} errors={f['errors']:<3}"
        f" undelivered={f['undelivered']:<3} ack p50/p99={ms(ack['p50_ms'])}/{ms(ack['p99_ms'])} ms"
        f" done p50/p99={ms(comp['p50_ms'])}/{ms(comp['p99_ms'])} ms"
        f" {f['throughput_per_s']:.0f}/s rss={f['peak_rss_mb']:.0f}MB cpu={f['app_cpu_pct']:.0f}%"
        f" ({f['app_cpu_ms_per_request']:.2f} ms/request) 429s={sum(f['slack_429s'].values())}",
        flush=True,
    )
    if len(f["by_scenario"]) > 1:
        for kind, k in sorted(f["by_scenario"].items()):
            print(
                f"      {kind:<16} sent={k['sent']:<5} errors={k['errors']:<3}"
                f" undelivered={k['undelivered']:<3} ack p99={ms(k['ack_p99_ms'])} ms"
                f" reply p99={ms(k['reply_p99_ms'])} ms",
                flush=True,
            )


async def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        await asyncio.sleep(0.02)
    raise TimeoutError(f"not within {timeout:g}s: {what}")


async def open_incident(slack: LocalSlack, system: SickSystem) -> Incident:
    """A P0 declared by alice, every on-call engineer in its channel, approval cards waiting there."""
    # A request that would terminate nothing is refused before it becomes a card: leave some idle
    # connections behind (again for each transport: the first approval terminated the last ones).
    await system.leak_connections(3)
    before = len(slack.calls("conversations.create"))
    await slack.slash("alice", "incident-response", "/incident declare p0 storm: checkout is down")
    created = await wait_for(
        lambda: [c for c in slack.calls("conversations.create")[before:] if c.ok], 30, "incident channel"
    )
    channel = slack.channel(str(created[0].args["name"])).id
    await wait_for(
        lambda: [m for m in slack.messages(channel) if "asked by <@U0ALICE>" in str(m.blocks)],
        30,
        "the P0 diagnosis",
    )
    web = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    await web.conversations_invite(channel=channel, users=",".join(storm_user(i) for i in range(200)))
    cards: list[Message] = []
    for n in range(APPROVAL_CARDS):
        await slack.slash("alice", channel, "/runbook run db.connections:terminate_idle idle_minutes=0")
        view = await wait_for(lambda: slack.current_view("alice"), 15, "the request modal")
        await slack.submit_view("alice", view, {"reason": f"storm bench card {n}"})
        found = await wait_for(
            lambda n=n: [
                m for m in slack.messages(channel) if m.blocks and f"storm bench card {n}" in str(m.blocks)
            ],
            15,
            "the approval card",
        )
        # What an engineer who has not reloaded still sees, buttons included, after it is approved.
        cards.append(copy.deepcopy(found[-1]))
    return Incident(channel=channel, cards=cards)


def _tag() -> str:
    return uuid.uuid4().hex[:6]


async def bench_transport(
    transport: str, plan: Plan, system: SickSystem, store_dsn: str, redis_url: str, workdir: Path
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    seed = storm_seed(subscribed_events(), [storm_user(i) for i in GROUPS["approve"]])
    data = workdir / transport
    data.mkdir()
    # Limits are switched on for a measured run only (Measured.run): setting up the incident is not
    # what is measured, and each limited run starts on full budgets.
    async with (
        LocalSlack.running(seed, rate_limits=False) as slack,
        LocalSlack.running(WorkspaceSeed(), rate_limits=False) as bare_slack,
    ):
        bot_env = {
            **_slack_env(slack, transport),
            "DATABASE_URL": store_dsn,
            "REDIS_URL": redis_url,
            "OPSBOT_TARGETS": str(system.targets_file),
            "OPSBOT_DATA_DIR": str(data),
            "OPSBOT_LOG_FORMAT": "json",
            "OPSBOT_LOG_LEVEL": "info",
            "OPSBOT_DEDUPE_TTL": "60",
            "OPSBOT_EVENT_LOOP": plan.loop,
            "OPSBOT_SLACK_BUDGET_SCALE": "1" if plan.bot_paces() else "1000",
            "PATH": system.path_env,
        }
        bare_env = {
            **_slack_env(bare_slack, transport),
            "PYTHONPATH": str(REPO),
            "OPSBOT_EVENT_LOOP": plan.loop,
        }
        if transport == "socket":
            slack.use_socket_mode()
            bare_slack.use_socket_mode()
        async with (
            running_app(f"opsbot-{transport}", opsbot_argv(), bot_env, workdir=data) as bot_app,
            running_app(f"bare-{transport}", bare_bolt_argv(), bare_env, workdir=data) as bare_app,
        ):
            if transport == "socket":
                await slack.wait_for_socket(1, 30)
                await bare_slack.wait_for_socket(1, 30)
            else:
                slack.request_url = bot_app.url + "/slack/events"
            bot = Target("opsbot", bot_app, slack, transport, plan.loop)
            bare = Target("bare", bare_app, bare_slack, transport, plan.loop)
            await bot.sender.start()
            await bare.sender.start()
            try:
                rows += await _bench_targets(plan, bot, bare, slack, system, store_dsn)
            finally:
                await bot.sender.close()
                await bare.sender.close()
    return rows


def _slack_env(slack: LocalSlack, transport: str) -> dict[str, str]:
    env = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "SLACK_API_URL": slack.api_url,
    }
    if transport == "socket":
        env["SLACK_APP_TOKEN"] = slack.app_token
    return env


async def _bench_targets(
    plan: Plan, bot: Target, bare: Target, slack: LocalSlack, system: SickSystem, store_dsn: str
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    measured = Measured(store_dsn)
    lobby = Incident(channel=slack.channel("incident-response").id, cards=[])
    for target in (bare, bot):  # warm-up: connections, auth.test, first-request imports
        work = Workload(slack, lobby, replies=False, tag=_tag())
        await closed_loop(target.sender, work.help, concurrency=8, count=300, max_s=30)

    if "throughput" in plan.scenarios:
        leak = plan.leak_count if bot.transport == "http" else plan.throughput_count
        rows.append(await _throughput_row(measured, bare, slack, lobby, plan.throughput_count, plan))
        rows.append(await _throughput_row(measured, bot, slack, lobby, leak, plan))
    if not set(plan.scenarios) - {"throughput"}:
        return rows
    incident = await open_incident(slack, system)
    for scenario in [*RATES, "storm"]:
        if scenario in plan.scenarios:
            for limits in plan.limits_for(scenario):
                rows += await _open_loop_rows(measured, [bare, bot], slack, incident, scenario, plan, limits)
    return rows


async def _throughput_row(
    measured: Measured, target: Target, slack: LocalSlack, lobby: Incident, count: int, plan: Plan
) -> dict[str, Any]:
    replies = target.label == "opsbot"
    work = Workload(slack, lobby, replies=replies, tag=_tag())
    marks: dict[int, int] = {}

    checkpoints = {1_000, *(count * k // 10 for k in range(1, 11))}

    def progress(done: int) -> None:
        if done in checkpoints:
            marks[done] = target.app.rss()

    async def load(c: Completions | None) -> Run:
        return await closed_loop(
            target.sender,
            work.help,
            concurrency=plan.concurrency,
            count=count,
            max_s=900,
            completions=c,
            on_progress=progress,
        )

    (row,) = await measured.run("throughput", [Leg(target, load, replies)], rate=None)
    row["rss_checkpoints"] = {str(k): v / 2**20 for k, v in sorted(marks.items())}
    return row


async def _open_loop_rows(
    measured: Measured,
    targets: list[Target],
    slack: LocalSlack,
    incident: Incident,
    scenario: str,
    plan: Plan,
    limits: str,
) -> list[dict[str, Any]]:
    """The same scenario against every target at once, so all of them see the same machine."""
    rate = STORM_RATE if scenario == "storm" else RATES[scenario]
    duration = plan.storm_s if scenario == "storm" else plan.scenario_s
    legs = []
    for target in targets:
        replies = target.label == "opsbot"
        make = getattr(Workload(slack, incident, replies=replies, tag=_tag()), scenario)

        async def load(c: Completions | None, sender: Sender = target.sender, make: Any = make) -> Run:
            return await open_loop(sender, make, rate=rate, duration_s=duration, completions=c)

        legs.append(Leg(target, load, replies))
    return await measured.run(scenario, legs, rate=rate, limits=limits)


def _run_key(row: dict[str, Any]) -> tuple[str, str, str]:
    return row["scenario"], row["transport"], row.get("slack_limits", "off")


def with_ratios(rows: list[dict[str, Any]]) -> None:
    """Adds opsbot / bare Bolt ratios to each opsbot row: ack p99, CPU-seconds per request, and
    throughput for throughput runs; always against the bare row of the same run."""
    bare = {_run_key(r): r for r in rows if r["app"] == "bare"}
    for row in rows:
        base = bare.get(_run_key(row))
        if row["app"] != "opsbot" or base is None:
            continue
        p99, base_p99 = row["ack"]["p99_ms"], base["ack"]["p99_ms"]
        row["ack_p99_ratio"] = p99 / base_p99 if p99 and base_p99 else None
        cpu, base_cpu = row["app_cpu_ms_per_request"], base["app_cpu_ms_per_request"]
        row["bare_cpu_ms_per_request"] = base_cpu
        row["cpu_per_request_ratio"] = cpu / base_cpu if base_cpu > 0 else None
        if row["scenario"] == "throughput" and base["throughput_per_s"]:
            row["throughput_ratio"] = row["throughput_per_s"] / base["throughput_per_s"]


def verdicts(rows: list[dict[str, Any]], plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in rows:
        if row["app"] != "opsbot":
            continue
        t = row["transport"]
        if row["scenario"] == "storm":
            limited = row["slack_limits"] == "real"
            out[f"storm_{t}" + ("_real_limits" if limited else "")] = {
                "transport": t,
                "slack_limits": row["slack_limits"],
                "event_loop": row["event_loop"],
                "rate_per_s": row["rate_per_s"],
                "duration_s": plan.storm_s,
                "errors": row["errors"],
                "undelivered": row["undelivered"],
                "replies_expected": row["replies_expected"],
                "replies_delivered": row["replies_delivered"],
                "reply_p99_ms": row["completion"]["p99_ms"],
                "slack_429s": row["slack_429s"],
                "ack_p99_ms": row["ack"]["p99_ms"],
                "ack_p99_ratio": row.get("ack_p99_ratio"),
                "cpu_ms_per_request": row["app_cpu_ms_per_request"],
                "bare_cpu_ms_per_request": row.get("bare_cpu_ms_per_request"),
                "cpu_per_request_ratio": row.get("cpu_per_request_ratio"),
                "zero_errors": row["errors"] == 0,
                "every_reply_delivered": row["undelivered"] == 0,
                "ack_p99_under_50ms": (row["ack"]["p99_ms"] or 1e9) < ACK_P99_TARGET_MS,
                "ack_p99_within_1_5x_bare": (row.get("ack_p99_ratio") or 1e9) <= RATIO_TARGET,
                "cpu_per_request_within_2x_bare": (row.get("cpu_per_request_ratio") or 1e9)
                <= CPU_RATIO_TARGET,
            }
        if row["scenario"] == "throughput":
            entry: dict[str, Any] = {
                "acks_per_s": row["throughput_per_s"],
                "ratio_to_bare": row.get("throughput_ratio"),
            }
            marks = row.get("rss_checkpoints") or {}
            if "1000" in marks and len(marks) > 1:
                first, last = marks["1000"], marks[max(marks, key=int)]
                entry.update(
                    requests=row["sent"],
                    rss_after_1k_mb=first,
                    rss_after_all_mb=last,
                    rss_growth=(last - first) / first,
                    rss_within_20pct=abs(last - first) / first <= RSS_GROWTH_TARGET,
                )
            out[f"throughput_{t}"] = entry
    return out


def table(rows: list[dict[str, Any]]) -> list[list[Any]]:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    out = []
    for r in rows:
        ack, comp = r["ack"], r["completion"]
        ratio = r.get("throughput_ratio") if r["scenario"] == "throughput" else r.get("ack_p99_ratio")
        out.append(
            [
                r["scenario"],
                r["transport"],
                r["app"],
                r.get("slack_limits", "off"),
                "max" if r["rate_per_s"] is None else f"{r['rate_per_s']:g}/s",
                r["sent"],
                r["errors"],
                r["undelivered"] if r["replies_expected"] else "-",
                f"{ms(ack['p50_ms'])}/{ms(ack['p95_ms'])}/{ms(ack['p99_ms'])}/{ms(ack['max_ms'])}",
                f"{ms(comp['p50_ms'])}/{ms(comp['p95_ms'])}/{ms(comp['p99_ms'])}/{ms(comp['max_ms'])}"
                if r["replies_expected"]
                else "-",
                f"{r['throughput_per_s']:.0f}",
                f"{r['peak_rss_mb']:.0f}",
                f"{r['app_cpu_pct']:.0f}%",
                f"{r['app_cpu_ms_per_request']:.2f}",
                "-" if ratio is None else f"{ratio:.2f}×",
                "-" if r.get("cpu_per_request_ratio") is None else f"{r['cpu_per_request_ratio']:.2f}×",
                sum(r.get("slack_429s", {}).values()),
            ]
        )
    return out


COLUMNS = [
    "scenario",
    "transport",
    "app",
    "limits",
    "rate",
    "sent",
    "errors",
    "undelivered",
    "ack ms p50/p95/p99/max",
    "reply ms p50/p95/p99/max",
    "acks/s",
    "peak RSS MB",
    "app CPU",
    "CPU ms/req",
    "ack p99 opsbot/bare",
    "CPU/req opsbot/bare",
    "429s",
]


async def main(plan: Plan) -> dict[str, Any]:
    quick = plan.quick
    admin = machine_postgres()
    redis_url = machine_redis()
    names = {k: f"opsbot_bench_{k}_{uuid.uuid4().hex[:8]}" for k in ("app", "http", "socket")}
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names.values():
            conn.execute(f'CREATE DATABASE "{name}"')
    dsn = {k: admin.rsplit("/", 1)[0] + "/" + name for k, name in names.items()}
    workdir = Path(tempfile.mkdtemp(prefix="opsbot-load-"))
    load_before = os.getloadavg()
    started = time.time()
    rows: list[dict[str, Any]] = []
    try:
        with indexed_history():
            async with SickSystem.running(
                postgres_dsn=dsn["app"], redis_url=redis_url, workdir=workdir / "sick"
            ) as system:
                for transport in plan.transports:
                    print(f"\n{transport}:", flush=True)
                    rows += await bench_transport(transport, plan, system, dsn[transport], redis_url, workdir)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)
    with_ratios(rows)
    figures: dict[str, Any] = {
        "quick": quick,
        "plan": {**plan.__dict__, "storm_mix": STORM_MIX, "rates_per_s": RATES},
        "machine": {
            "cpus": psutil.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "wall_s": time.time() - started,
        },
        "targets": {
            "storm_rate_per_s": STORM_RATE,
            "ack_p99_ms": ACK_P99_TARGET_MS,
            "ack_p99_ratio_to_bare": RATIO_TARGET,
            "cpu_per_request_ratio_to_bare": CPU_RATIO_TARGET,
            "rss_growth": RSS_GROWTH_TARGET,
        },
        "verdicts": verdicts(rows, plan),
        "rows": rows,
    }
    print_table(
        "Slack load: opsbot and a bare Bolt app, same machine, same run (ms from the request leaving)",
        COLUMNS,
        table(rows),
    )
    _print_verdicts(figures)
    name = "slack_load" + ("_quick" if quick else "")
    if plan.scenarios != SCENARIOS or plan.transports != ("http", "socket") or plan.slack_limits:
        name += "_partial"
    print(f"results: {save(name, figures)}")
    return figures


def _print_verdicts(figures: dict[str, Any]) -> None:
    v = figures["verdicts"]
    m = figures["machine"]
    print(
        f"\nload average before {m['load_average_before'][0]:.2f}, after {m['load_average_after'][0]:.2f}"
        f" on {m['cpus']} CPUs"
    )
    for t in ("http", "socket"):
        for s in (v.get(f"storm_{t}"), v.get(f"storm_{t}_real_limits")):
            if s:
                _print_storm_verdict(s)
        th = v.get(f"throughput_{t}")
        if th:
            ratio = th["ratio_to_bare"]
            line = (
                f"throughput {t}: {th['acks_per_s']:.0f} /opsbot help acks/s, "
                f"{'-' if ratio is None else f'{ratio:.2f}'}× bare Bolt"
            )
            if "rss_growth" in th:
                line += (
                    f"; RSS {th['rss_after_1k_mb']:.1f} MB after 1,000, {th['rss_after_all_mb']:.1f} MB "
                    f"after {th['requests']:,} ({th['rss_growth'] * 100:+.1f} %, "
                    f"{'met' if th['rss_within_20pct'] else 'NOT met'}: within 20 %)"
                )
            print(line)


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}×"


def _print_storm_verdict(s: dict[str, Any]) -> None:
    head = f"storm {s['transport']}, Slack limits {s['slack_limits']}, {s['event_loop']} for both apps"
    print(
        f"{head}: {s['rate_per_s']:g} req/s for {s['duration_s']:g} s — errors {s['errors']}, "
        f"undelivered {s['undelivered']}, ack p99 {s['ack_p99_ms']:.1f} ms "
        f"({_met(s['ack_p99_under_50ms'])}: < 50 ms)"
    )
    print(
        f"  ack p99 {_ratio(s['ack_p99_ratio'])} bare Bolt's "
        f"({_met(s['ack_p99_within_1_5x_bare'])}: ≤ {RATIO_TARGET:g}×)"
    )
    bare_cpu = s["bare_cpu_ms_per_request"]
    print(
        f"  CPU per request {s['cpu_ms_per_request']:.2f} ms vs bare Bolt's "
        f"{'-' if bare_cpu is None else f'{bare_cpu:.2f}'} ms = {_ratio(s['cpu_per_request_ratio'])} "
        f"({_met(s['cpu_per_request_within_2x_bare'])}: ≤ {CPU_RATIO_TARGET:g}×)"
    )
    if s["slack_limits"] == "real":
        reply_p99 = s["reply_p99_ms"]
        refused = ", ".join(f"{m} {n}" for m, n in s["slack_429s"].items()) or "none"
        print(
            f"  replies delivered {s['replies_delivered']}/{s['replies_expected']}, reply p99 "
            f"{'-' if reply_p99 is None else f'{reply_p99:.0f}'} ms; 429s from Slack: {refused}"
        )


def markdown(figures: dict[str, Any]) -> str:
    """The results table in Markdown, for the README."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in table(figures["rows"])]
    return "\n".join(lines)


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short run (also BENCH_QUICK=1)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset")
    parser.add_argument("--transports", default="http,socket", help="http, socket or both")
    parser.add_argument(
        "--leak-requests",
        type=int,
        help="help requests for opsbot's RSS run over HTTP (100,000; quick 10,000)",
    )
    parser.add_argument(
        "--slack-limits",
        choices=("real", "off", "both"),
        help="Slack's Web API rate limits in localslack (default: both for the storm, off for the rest)",
    )
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="the event loop of both apps (OPSBOT_EVENT_LOOP)",
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print the last full run's table as Markdown and exit"
    )
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads((RESULTS / "slack_load.json").read_text())))
        return
    scenarios = tuple(s for s in args.scenarios.split(",") if s)
    transports = tuple(t for t in args.transports.split(",") if t)
    unknown = set(scenarios) - set(SCENARIOS) | set(transports) - {"http", "socket"}
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    configure_logging("warning", "console")
    quick = args.quick or os.environ.get("BENCH_QUICK") == "1"
    limits = {None: None, "both": ("off", "real"), "off": ("off",), "real": ("real",)}[args.slack_limits]
    asyncio.run(main(Plan.make(quick, scenarios, transports, args.leak_requests, limits, args.loop)))


if __name__ == "__main__":
    cli()

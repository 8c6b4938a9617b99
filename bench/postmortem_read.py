"""Benchmark: reading a whole incident channel for the review draft, and converting it to Markdown.

A channel of 1,000 and one of 10,000 messages (10 % of them thread replies, in threads of 10) is
read with `read_channel` through the bot's own Web API client over HTTP, names are looked up, and
every message goes through `to_markdown`. Targets: 10,000 messages in under 3 s and under 200 MB
for the whole process, with the emulator not throttling.

Each size is measured in a fresh process, and the emulator runs in a child of that process, so
the memory figures are the bot's alone. The child fills
the channel through localslack's in-process workspace API (`LocalSlack.state.add_message`), not
over HTTP: only the read goes over the wire, exactly as the bot does it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
import tracemalloc
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.common import median, print_table, save
from bot.incidents.store import Incident
from bot.logs import configure_logging
from bot.metrics import Metrics
from bot.postmortem.builder import build
from bot.postmortem.facts import Message, ReviewFacts
from bot.postmortem.history import HistoryMessage, channel_names, read_channel, user_names
from bot.postmortem.markup import referenced_ids, to_markdown
from bot.postmortem.render import load_template, render_markdown
from bot.slack.client import create_web_client

SIZES = (1_000, 10_000)
ROUNDS = {1_000: 5, 10_000: 3}
REPLIES_PER_THREAD = 10
TARGET_S = 3.0
TARGET_MB = 200.0
AUTHORS = ("U0ALICE", "U0BOB", "U0CAROL", "U0DAVE")
SECRET = "hunter2-prod"
TEMPLATE = load_template(None)
TEXTS = (
    "*Update*: <@U0BOB> is on <https://grafana.example.com/d/db?orgId=1&amp;from=now-1h|the DB board>",
    "error rate &gt; 5% on `checkout`, see <#C0GENERAL|general> and _the runbook_",
    "```\nSELECT pid, state FROM pg_stat_activity WHERE wait_event IS NOT NULL;\n```",
    "<!here> failing over to the replica ~now~ in 2 min, dsn postgresql://app:" + SECRET + "@db/prod",
    "ack from <@U0DAVE>, paging <!subteam^S0ONCALL|@oncall>",
)


def _fill_and_serve(total: int, conn: Connection) -> None:
    """Child process: a localslack with one channel of `total` messages, served until told to stop."""
    from localslack import LocalSlack

    async def serve() -> None:
        async with LocalSlack.running() as slack:
            ch = slack.channel("#incident-response")
            state = slack.state
            replies = total // 10
            threads = replies // REPLIES_PER_THREAD
            top = total - replies
            every = top // threads
            for i in range(top):
                msg = state.add_message(ch, user=AUTHORS[i % 4], text=f"{i}: {TEXTS[i % len(TEXTS)]}")
                if i % every == 0 and i // every < threads:
                    for r in range(REPLIES_PER_THREAD):
                        state.add_message(
                            ch, user=AUTHORS[r % 4], text=TEXTS[r % len(TEXTS)], thread_ts=msg.ts
                        )
            assert len(ch.messages) == total
            conn.send((slack.api_url, slack.bot_token, ch.id))
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    asyncio.run(serve())


async def read_and_convert(api_url: str, token: str, channel: str) -> tuple[list[str], float]:
    """What the review draft does; returns the Markdown lines and the seconds spent reading."""
    client = create_web_client(token, api_url, Metrics())
    started = time.perf_counter()
    messages: list[HistoryMessage] = await read_channel(client, channel)
    read_s = time.perf_counter() - started
    wanted_users: set[str] = {m.user for m in messages if m.user}
    wanted_channels: set[str] = set()
    for m in messages:
        mentioned_users, mentioned_channels = referenced_ids(m.text)
        wanted_users |= mentioned_users
        wanted_channels |= mentioned_channels
    users = await user_names(client, wanted_users)
    channels = await channel_names(client, wanted_channels)
    await client.close()
    lines = [to_markdown(m.text, users=users, channels=channels, secrets=[SECRET]) for m in messages]
    # The rest of the draft: the same builder and template the bot uses, over every message.
    now = datetime.now(UTC)
    incident = Incident(
        id="INC-BENCH-0001",
        title="bench",
        severity="p1",
        status="resolved",
        service="checkout",
        security_sensitive=False,
        channel_id=channel,
        channel_name="inc-bench",
        card_ts=None,
        commander="U0ALICE",
        comms_lead=None,
        scribe=None,
        declared_by="U0ALICE",
        declared_at=now,
        resolved_by="U0ALICE",
        resolved_at=now,
        summary="bench",
        root_cause=None,
        last_update=None,
        last_update_at=None,
    )
    facts = ReviewFacts(
        incident=incident,
        timeline=[],
        diagnoses=[],
        approvals=[],
        users=users,
        generated_at=now,
        messages=[
            Message(at=m.at, user=m.user, text=line, reactions=m.reactions, is_reply=m.is_reply)
            for m, line in zip(messages, lines, strict=True)
        ],
    )
    markdown = render_markdown(build(facts), TEMPLATE)
    assert markdown.startswith("# Incident Review")
    return lines, read_s


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def _reset_peak_rss() -> bool:
    """Linux resets VmHWM to the current RSS when 5 is written to clear_refs (since 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


async def measure(total: int) -> dict[str, Any]:
    """All figures for one channel size; run in a fresh process so earlier runs leave no residue."""
    spawn = multiprocessing.get_context("spawn")
    parent, child = spawn.Pipe()
    proc = spawn.Process(target=_fill_and_serve, args=(total, child))
    proc.start()
    try:
        api_url, token, channel = parent.recv()
        # Memory first, while the process is cold: RSS growth then includes everything the read
        # and conversion need, and no freed-but-kept heap from earlier rounds hides it.
        rss_reset = _reset_peak_rss()
        rss_before_kb = _status_kb("VmRSS")
        await read_and_convert(api_url, token, channel)
        hwm_kb = _status_kb("VmHWM")

        tracemalloc.start()
        await read_and_convert(api_url, token, channel)
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        walls: list[float] = []
        reads: list[float] = []
        for _ in range(ROUNDS[total]):
            started = time.perf_counter()
            lines, read_s = await read_and_convert(api_url, token, channel)
            walls.append(time.perf_counter() - started)
            reads.append(read_s)
            assert len(lines) == total
            assert not any(SECRET in line for line in lines)
    finally:
        parent.send("stop")
        proc.join(30)
    return {
        "messages": total,
        "replies": total // 10,
        "threads": total // 10 // REPLIES_PER_THREAD,
        "rounds": ROUNDS[total],
        "wall_median_s": median(walls),
        "wall_max_s": max(walls),
        "read_median_s": median(reads),
        "convert_median_s": median([w - r for w, r in zip(walls, reads, strict=True)]),
        "tracemalloc_peak_mb": traced_peak / 2**20,
        "rss_before_mb": rss_before_kb / 1024,
        "rss_peak_mb": hwm_kb / 1024,
        "rss_growth_mb": (hwm_kb - rss_before_kb) / 1024,
        "rss_peak_was_reset": rss_reset,
    }


def _measure_in_child(total: int, conn: Connection) -> None:
    _unset_proxies()
    configure_logging("warning", "console")
    conn.send(asyncio.run(measure(total)))


def _measure_fresh(total: int) -> dict[str, Any]:
    spawn = multiprocessing.get_context("spawn")
    parent, child = spawn.Pipe()
    proc = spawn.Process(target=_measure_in_child, args=(total, child))
    proc.start()
    result: dict[str, Any] = parent.recv()
    proc.join(30)
    return result


def _unset_proxies() -> None:
    # slack_sdk turns HTTP(S)_PROXY into an explicit proxy that ignores NO_PROXY, even for 127.0.0.1.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(name, None)


def main() -> dict[str, Any]:
    runs = [_measure_fresh(total) for total in SIZES]
    big = runs[-1]
    figures: dict[str, Any] = {
        "runs": runs,
        "target_s": TARGET_S,
        "target_mb": TARGET_MB,
        "meets_time_target": big["wall_max_s"] < TARGET_S,
        "meets_memory_target": big["rss_peak_mb"] < TARGET_MB,
        "emulator": "separate process, channel filled via LocalSlack.state.add_message; no throttling",
    }
    print_table(
        "read_channel + names + to_markdown + the draft build, whole channel (emulator in a child process)",
        [
            "messages",
            "wall median s",
            "wall max s",
            "read s",
            "convert s",
            "tracemalloc peak MB",
            "RSS growth MB",
            "process peak RSS MB",
        ],
        [
            [
                r["messages"],
                r["wall_median_s"],
                r["wall_max_s"],
                r["read_median_s"],
                r["convert_median_s"],
                r["tracemalloc_peak_mb"],
                r["rss_growth_mb"],
                r["rss_peak_mb"],
            ]
            for r in runs
        ],
    )
    print(
        f"\n10,000 messages: worst {big['wall_max_s']:.2f} s (target < {TARGET_S:g} s), "
        f"process peak {big['rss_peak_mb']:.0f} MB (target < {TARGET_MB:g} MB)"
    )
    print(f"results: {save('postmortem_read', figures)}")
    return figures


if __name__ == "__main__":
    main()

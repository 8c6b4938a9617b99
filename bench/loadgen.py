"""Load generator: signed Slack deliveries to a running app over HTTP or Socket Mode.

Two ways to drive it, both bounded in count and in time:

* `open_loop` sends on a clock (request i leaves at start + i / rate) whether or not earlier ones
  were answered, as Slack does when many people click at once;
* `closed_loop` keeps a fixed number of requests in flight, for the maximum sustained throughput.

Each `Shot` records its ack latency (HTTP response, or the Socket Mode ack of its envelope) and,
when the app is expected to reply outside the ack, its completion latency: the moment the reply
lands in localslack, reported to `Completions` by the hooks in `bench.slackside`. Times come from
`time.perf_counter()` in this process only, so they never mix clocks.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp

from localslack.signing import signed_headers

# Slack's acknowledgement window: no answer within it is a failed delivery.
ACK_WINDOW_S = 3.0

Kind = str  # "slash_commands" | "interactive" | "events_api"


@dataclass(slots=True)
class Shot:
    """One delivery and what became of it; times are perf_counter seconds, 0.0 when it never happened."""

    scenario: str
    kind: Kind
    payload: dict[str, Any]
    # Completion key: the reply that finishes this request lands under it. None: the ack is all.
    key: str | None = None
    # The reply travels in the ack body itself (e.g. `/opsbot help`): completion is the ack.
    reply_in_ack: bool = False
    scheduled: float = 0.0
    sent: float = 0.0
    acked: float = 0.0
    completed: float = 0.0
    error: str | None = None

    @property
    def ack_s(self) -> float | None:
        return self.acked - self.sent if self.acked else None

    @property
    def completion_s(self) -> float | None:
        return self.completed - self.sent if self.completed else None

    @property
    def expects_completion(self) -> bool:
        return self.key is not None or self.reply_in_ack


class Completions:
    """Pending replies by key, oldest first; a landing reply completes the oldest request waiting on it."""

    def __init__(self) -> None:
        self._pending: dict[str, deque[Shot]] = {}
        self._changed = asyncio.Event()
        self.unmatched = 0

    def expect(self, shot: Shot) -> None:
        assert shot.key is not None
        self._pending.setdefault(shot.key, deque()).append(shot)

    def forget(self, shot: Shot) -> None:
        queue = self._pending.get(shot.key or "")
        if queue is not None and shot in queue:
            queue.remove(shot)

    def landed(self, key: str, at: float | None = None) -> None:
        queue = self._pending.get(key)
        if not queue:
            self.unmatched += 1
            return
        shot = queue.popleft()
        shot.completed = at if at is not None else time.perf_counter()
        self._changed.set()

    @property
    def outstanding(self) -> int:
        return sum(len(q) for q in self._pending.values())

    async def settle(self, timeout: float) -> None:  # noqa: ASYNC109
        """Waits until nothing is pending or `timeout` passes; what is left stays undelivered."""
        deadline = time.perf_counter() + timeout
        while self.outstanding and time.perf_counter() < deadline:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - time.perf_counter()))
            except TimeoutError:
                break


def require_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127."):
        raise ValueError(f"the load generator only sends to loopback addresses, not {host!r}")


def encode(kind: Kind, payload: dict[str, Any]) -> tuple[bytes, str]:
    """As Slack sends it: commands as a form, interactions as a form with one JSON field, events as JSON."""
    if kind == "slash_commands":
        return urlencode(payload).encode(), "application/x-www-form-urlencoded"
    if kind == "interactive":
        return urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"
    return json.dumps(payload).encode(), "application/json"


def _has_reply(ack: Any) -> bool:
    return isinstance(ack, dict) and any(ack.get(k) for k in ("text", "blocks", "attachments"))


class Sender:
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, shot: Shot) -> None:
        raise NotImplementedError


class HttpSender(Sender):
    """POSTs to the app's request URL with Slack's v0 signature, computed at send time."""

    def __init__(self, url: str, signing_secret: str, *, connections: int = 256) -> None:
        require_loopback(url)
        self.url = url
        self._secret = signing_secret
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # trust_env=False: a developer's HTTP(S)_PROXY must never capture loopback traffic.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._connections),
            timeout=aiohttp.ClientTimeout(total=ACK_WINDOW_S),
            trust_env=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, shot: Shot) -> None:
        assert self._session is not None
        body, content_type = encode(shot.kind, shot.payload)
        headers = {"Content-Type": content_type, **signed_headers(self._secret, body)}
        shot.sent = time.perf_counter()
        try:
            async with self._session.post(self.url, data=body, headers=headers) as resp:
                text = await resp.read()
                if not 200 <= resp.status < 300:
                    shot.error = f"http_{resp.status}"
                    return
                shot.acked = time.perf_counter()
                if shot.reply_in_ack and text.startswith(b"{") and _has_reply(json.loads(text)):
                    shot.completed = shot.acked
        except TimeoutError:
            shot.error = "ack_timeout"
        except aiohttp.ClientError as exc:
            shot.error = type(exc).__name__


# (envelope type, payload, accepts_response_payload) -> the ack's payload, or raises TimeoutError
SocketDeliver = Callable[[str, dict[str, Any], bool], Awaitable[dict[str, Any] | None]]


class SocketSender(Sender):
    """Hands envelopes to the app over localslack's Socket Mode hub; the ack is the app's reply frame."""

    def __init__(self, deliver: SocketDeliver) -> None:
        self._deliver = deliver

    async def send(self, shot: Shot) -> None:
        accepts = shot.kind == "slash_commands"
        shot.sent = time.perf_counter()
        try:
            ack = await self._deliver(shot.kind, shot.payload, accepts)
        except TimeoutError:
            shot.error = "ack_timeout"
            return
        except ConnectionError as exc:
            shot.error = type(exc).__name__
            return
        shot.acked = time.perf_counter()
        if shot.reply_in_ack and _has_reply(ack):
            shot.completed = shot.acked


@dataclass
class Run:
    """All shots of one run, plus how well the generator kept to its clock."""

    shots: list[Shot] = field(default_factory=list)
    started: float = 0.0
    finished_sending: float = 0.0
    lag_s: list[float] = field(default_factory=list)


async def _fire(sender: Sender, shot: Shot, completions: Completions | None) -> None:
    if completions is not None and shot.key is not None:
        # Registered before sending: a fast app can post its reply before its ack reaches us.
        completions.expect(shot)
    await sender.send(shot)
    shot.payload = {}  # 100,000 kept payloads would be the generator's memory, not the app's
    if shot.error is not None and completions is not None and shot.key is not None:
        completions.forget(shot)


async def open_loop(
    sender: Sender,
    make_shot: Callable[[int], Shot],
    *,
    rate: float,
    duration_s: float,
    completions: Completions | None = None,
    settle_s: float = 15.0,
) -> Run:
    """Sends `rate` requests per second for `duration_s`, on the clock, then waits for acks and replies."""
    run = Run()
    count = int(rate * duration_s)
    tasks: set[asyncio.Task[None]] = set()
    run.started = time.perf_counter()
    for i in range(count):
        due = run.started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        shot = make_shot(i)
        shot.scheduled = due
        run.lag_s.append(max(0.0, time.perf_counter() - due))
        run.shots.append(shot)
        task = asyncio.create_task(_fire(sender, shot, completions))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    run.finished_sending = time.perf_counter()
    if tasks:
        await asyncio.wait(tasks, timeout=ACK_WINDOW_S + 2)
    if completions is not None:
        await completions.settle(settle_s)
    return run


async def closed_loop(
    sender: Sender,
    make_shot: Callable[[int], Shot],
    *,
    concurrency: int,
    count: int,
    max_s: float,
    completions: Completions | None = None,
    settle_s: float = 15.0,
    on_progress: Callable[[int], None] | None = None,
) -> Run:
    """Keeps `concurrency` requests in flight until `count` were sent or `max_s` passed."""
    run = Run()
    next_index = 0
    done = 0
    run.started = time.perf_counter()
    deadline = run.started + max_s

    async def worker() -> None:
        nonlocal next_index, done
        while next_index < count and time.perf_counter() < deadline:
            shot = make_shot(next_index)
            next_index += 1
            shot.scheduled = time.perf_counter()
            run.shots.append(shot)
            await _fire(sender, shot, completions)
            done += 1
            if on_progress is not None:
                on_progress(done)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.finished_sending = time.perf_counter()
    if completions is not None:
        await completions.settle(settle_s)
    return run


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summarize(run: Run) -> dict[str, Any]:
    """Counts and latency percentiles (milliseconds) of one run."""
    shots = run.shots
    acks = sorted(s.ack_s for s in shots if s.ack_s is not None)
    expected = [s for s in shots if s.expects_completion and s.error is None]
    completions = sorted(s.completion_s for s in expected if s.completion_s is not None)
    acked = [s for s in shots if s.acked]
    window = (max(s.acked for s in acked) - run.started) if acked else 0.0
    errors: dict[str, int] = {}
    for s in shots:
        if s.error is not None:
            errors[s.error] = errors.get(s.error, 0) + 1
    lag = sorted(run.lag_s)

    def dist(values: list[float]) -> dict[str, float | None]:
        if not values:
            return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
        return {
            "p50_ms": percentile(values, 50) * 1000,
            "p95_ms": percentile(values, 95) * 1000,
            "p99_ms": percentile(values, 99) * 1000,
            "max_ms": values[-1] * 1000,
        }

    by_kind: dict[str, dict[str, Any]] = {}
    for s in shots:
        entry = by_kind.setdefault(
            s.scenario, {"sent": 0, "errors": 0, "undelivered": 0, "acks": [], "replies": []}
        )
        entry["sent"] += 1
        entry["errors"] += s.error is not None
        if s.ack_s is not None:
            entry["acks"].append(s.ack_s)
        if s.expects_completion and s.error is None:
            if s.completion_s is None:
                entry["undelivered"] += 1
            else:
                entry["replies"].append(s.completion_s)
    for entry in by_kind.values():
        kind_acks, kind_replies = sorted(entry.pop("acks")), sorted(entry.pop("replies"))
        entry["ack_p99_ms"] = percentile(kind_acks, 99) * 1000 if kind_acks else None
        entry["reply_p99_ms"] = percentile(kind_replies, 99) * 1000 if kind_replies else None

    return {
        "sent": len(shots),
        "acked": len(acks),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "ack": dist(acks),
        "replies_expected": len(expected),
        "replies_delivered": len(completions),
        "undelivered": len(expected) - len(completions),
        "completion": dist(completions),
        "throughput_per_s": len(acks) / window if window > 0 else 0.0,
        "duration_s": window,
        "schedule_lag_p99_ms": percentile(lag, 99) * 1000 if lag else None,
        "by_scenario": by_kind,
    }

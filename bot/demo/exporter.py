"""The sick backend's exporter series: what the seed alert rules read, sick or healthy.

`deploy/prometheus/opsbot-seed-alerts.yml` reads the series of the usual exporters. The demo backend's
`/metrics` stands in for all of them at once — its own request counters and latency histogram,
postgres_exporter's `pg_stat_activity_count` (counted in the app database when it has one),
node_exporter's disk and memory gauges, redis_exporter's keyspace counters, blackbox_exporter's
`probe_success` and the circuit breaker gauge — so a real Prometheus scraping it fires the seed rules
while the system is sick and resolves them once it is healthy.

Counters grow with wall-clock time at the rates of the current state, so they never go backwards
when the state flips, and `rate()` over any window measures the state of that window.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import psycopg

from bot.logs import get_logger

log = get_logger(__name__)

# Requests per second by (method, status): 7 % 5xx while sick (critical above 5 %), 0.02 % healthy.
SICK_REQUESTS = {("GET", "200"): 80.0, ("POST", "201"): 13.0, ("GET", "500"): 6.0, ("GET", "503"): 1.0}
HEALTHY_REQUESTS = {("GET", "200"): 86.98, ("POST", "201"): 13.0, ("GET", "500"): 0.02, ("GET", "503"): 0.0}
# Cumulative share of requests at or under each bucket bound: p95 2.25 s sick (over the 2 s page
# line), 0.05 s healthy.
BUCKETS = ("0.05", "0.1", "0.25", "0.5", "1", "2", "2.5", "5", "+Inf")
SICK_LATENCY = (0.5, 0.7, 0.8, 0.85, 0.88, 0.9, 1.0, 1.0, 1.0)
HEALTHY_LATENCY = (0.99, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
SICK_MEAN_S, HEALTHY_MEAN_S = 0.6, 0.03
# Cache lookups per second (hits, misses): a 42 % hit rate sick (below 60 %), 88 % healthy.
SICK_LOOKUPS, HEALTHY_LOOKUPS = (42.0, 58.0), (88.0, 12.0)
GIB = 1024**3
DISK_SIZE, SICK_DISK_FREE, HEALTHY_DISK_FREE = 100 * GIB, 7 * GIB, 59 * GIB
MEMORY_SIZE, SICK_MEMORY_FREE, HEALTHY_MEMORY_FREE = 8 * GIB, 0.72 * GIB, 4.4 * GIB
# Without an app database to count in: the leak the demo story is about, or a normal pool.
SICK_ACTIVITY = {"idle": 55, "active": 2}
HEALTHY_ACTIVITY = {"idle": 10, "active": 2}


@dataclass
class Exporter:
    """Counters that advance at the sick or healthy rates between two scrapes."""

    requests: dict[tuple[str, str], float] = field(default_factory=lambda: dict.fromkeys(SICK_REQUESTS, 0.0))
    buckets: list[float] = field(default_factory=lambda: [0.0] * len(BUCKETS))
    duration_sum: float = 0.0
    lookups: list[float] = field(default_factory=lambda: [0.0, 0.0])
    last: float = field(default_factory=time.monotonic)

    def advance(self, *, sick: bool) -> None:
        """Add what the backend served since the last scrape, at the current state's rates."""
        now = time.monotonic()
        elapsed, self.last = now - self.last, now
        rates = SICK_REQUESTS if sick else HEALTHY_REQUESTS
        for key, rate in rates.items():
            self.requests[key] += rate * elapsed
        served = sum(rates.values()) * elapsed
        shares = SICK_LATENCY if sick else HEALTHY_LATENCY
        self.buckets = [count + share * served for count, share in zip(self.buckets, shares, strict=True)]
        self.duration_sum += served * (SICK_MEAN_S if sick else HEALTHY_MEAN_S)
        lookups = SICK_LOOKUPS if sick else HEALTHY_LOOKUPS
        self.lookups = [count + rate * elapsed for count, rate in zip(self.lookups, lookups, strict=True)]

    def lines(self, *, sick: bool, breakers: Mapping[str, str]) -> list[str]:
        """The exposition lines for the current counters (call `advance` first)."""
        return [
            *self._request_lines(),
            *self._host_lines(sick),
            "# TYPE redis_keyspace_hits_total counter",
            f"redis_keyspace_hits_total {self.lookups[0]:.3f}",
            "# TYPE redis_keyspace_misses_total counter",
            f"redis_keyspace_misses_total {self.lookups[1]:.3f}",
            "# HELP probe_success Whether the backend's own /health check succeeds.",
            "# TYPE probe_success gauge",
            f"probe_success {0 if sick else 1}",
            "# HELP circuit_breaker_state 1 while the breaker to a dependency is open.",
            "# TYPE circuit_breaker_state gauge",
            # A breaker left open by hand reads closed once the system is healthy: the provider answers
            # again and the breaker's half-open probe closes it.
            *(
                f'circuit_breaker_state{{dependency="{name}"}} {int(sick and value == "open")}'
                for name, value in sorted(breakers.items())
            ),
        ]

    def _request_lines(self) -> list[str]:
        return [
            "# HELP http_requests_total Requests served, by status.",
            "# TYPE http_requests_total counter",
            *(
                f'http_requests_total{{method="{method}",status="{status}"}} {count:.3f}'
                for (method, status), count in self.requests.items()
            ),
            "# HELP http_request_duration_seconds Request latency.",
            "# TYPE http_request_duration_seconds histogram",
            *(
                f'http_request_duration_seconds_bucket{{le="{bound}"}} {count:.3f}'
                for bound, count in zip(BUCKETS, self.buckets, strict=True)
            ),
            f"http_request_duration_seconds_sum {self.duration_sum:.3f}",
            f"http_request_duration_seconds_count {self.buckets[-1]:.3f}",
        ]

    @staticmethod
    def _host_lines(sick: bool) -> list[str]:
        disk_free = SICK_DISK_FREE if sick else HEALTHY_DISK_FREE
        memory_free = SICK_MEMORY_FREE if sick else HEALTHY_MEMORY_FREE
        return [
            "# TYPE node_filesystem_size_bytes gauge",
            f'node_filesystem_size_bytes{{mountpoint="/"}} {DISK_SIZE}',
            "# TYPE node_filesystem_avail_bytes gauge",
            f'node_filesystem_avail_bytes{{mountpoint="/"}} {disk_free}',
            "# TYPE node_memory_MemTotal_bytes gauge",
            f"node_memory_MemTotal_bytes {MEMORY_SIZE}",
            "# TYPE node_memory_MemAvailable_bytes gauge",
            f"node_memory_MemAvailable_bytes {memory_free:.0f}",
        ]


_ACTIVITY_SQL = (
    "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() GROUP BY 1 ORDER BY 1"
)


async def activity_lines(app_dsn: str | None, *, sick: bool) -> list[str]:
    """postgres_exporter's `pg_stat_activity_count` by state, counted in the app database when there is
    one (so terminating the leaked connections really clears the alert); `pg_up` 0 when it cannot be
    reached, and then no count at all rather than a made-up one."""
    if app_dsn is None:
        counts = SICK_ACTIVITY if sick else HEALTHY_ACTIVITY
        return [*_activity(counts), "pg_up 1"]
    try:
        async with await psycopg.AsyncConnection.connect(
            app_dsn, autocommit=True, connect_timeout=3, application_name="demo-exporter"
        ) as conn:
            rows = await (await conn.execute(_ACTIVITY_SQL)).fetchall()
    except psycopg.Error as exc:
        log.warning("demo_exporter_pg_unreachable", error=type(exc).__name__)
        return ["pg_up 0"]
    return [*_activity({str(state): int(count) for state, count in rows}), "pg_up 1"]


def _activity(counts: Mapping[str, int]) -> list[str]:
    return [
        "# HELP pg_stat_activity_count Connections to the app database, by state.",
        "# TYPE pg_stat_activity_count gauge",
        *(f'pg_stat_activity_count{{state="{state}"}} {count}' for state, count in counts.items()),
    ]

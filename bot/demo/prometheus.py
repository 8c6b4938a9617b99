"""A Prometheus query API (`/api/v1/query`) answering the catalogue's queries with plausible values.

Queries are matched by the metric they ask about (whitespace ignored), most specific first; each
has a sick and a healthy value (error rate 7 % vs 0.02 %, p99 3.2 s vs 0.35 s, …). A query the
table does not know answers an empty vector, as a real Prometheus does for an absent metric.

A test can set the answer to one exact query (`Answers.set`): it wins over the table, so any
catalogue check can be driven to any value without a new table row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web

from bot.demo.api import ApiState

STATE_KEY = web.AppKey("prometheus_state", ApiState)
Sample = tuple[dict[str, str], float]


def compact(query: str) -> str:
    """A query without whitespace: how queries are compared."""
    return "".join(query.split())


class Answers:
    """Answers set for exact queries (whitespace ignored); they win over the sick/healthy table."""

    def __init__(self) -> None:
        self._by_query: dict[str, list[Sample]] = {}

    def set(self, query: str, *samples: Sample) -> None:
        """Answer `query` with these labelled values (none: an empty vector)."""
        self._by_query[compact(query)] = list(samples)

    def get(self, query: str) -> list[Sample] | None:
        return self._by_query.get(compact(query))

    def clear(self) -> None:
        self._by_query.clear()


ANSWERS_KEY = web.AppKey("prometheus_answers", Answers)


@dataclass(frozen=True)
class Series:
    """One answer: when every needle occurs in the query, these labelled values come back."""

    needles: tuple[str, ...]
    sick: tuple[tuple[dict[str, str], float], ...]
    healthy: tuple[tuple[dict[str, str], float], ...]


def _one(needles: str | tuple[str, ...], sick: float, healthy: float, **labels: str) -> Series:
    found = (needles,) if isinstance(needles, str) else needles
    return Series(found, ((labels, sick),), ((labels, healthy),))


# Order matters: the first entry whose needles all occur in the query answers it.
TABLE: tuple[Series, ...] = (
    _one("canary_error_rate", 3.5, 0.2),
    _one('status=~"[45].."', 9.1, 0.05),
    _one('status=~"5.."', 7.0, 0.02),
    _one("http_request_duration_seconds_sum", 0.9, 0.03),
    _one(("histogram_quantile(0.99", "http_request_duration"), 3.2, 0.35),
    _one(("histogram_quantile(0.95", "http_request_duration"), 2.4, 0.04),
    _one("together_api_latency", 2.6, 0.4),
    _one("db_query_duration", 1.8, 0.03),
    _one("together_api_rate_limited_total", 0.8, 0.0),
    _one("together_api_errors_total", 2.1, 0.0),
    _one("rate_limit_exceeded", 4.2, 0.0),
    _one("circuit_breaker_state", 1.0, 0.0, dependency="together_ai"),
    _one(("deriv(", "pg_stat_activity_count"), 2.4, 0.0),
    _one("pg_stat_activity_count", 57.0, 12.0),
    _one("node_memory", 91.0, 45.0),
    _one("node_filesystem", 93.0, 41.0),
    _one("container_fs_usage_bytes", 93.0, 38.0),
    _one("delta(process_resident_memory_bytes", 240.0, 3.0),
    _one("process_resident_memory_bytes", 1480.0, 310.0),
    _one('process_cpu_seconds_total{job="postgres"}', 72.0, 20.0),
    _one("process_cpu_seconds_total", 92.0, 12.0),
    _one("websocket_reconnects_total", 14.0, 0.1),
    _one("guardrails_requests_total", 6.5, 0.8),
    _one("guardrails_violations_total", 48.0, 3.0),
    _one("guardrails_pii_detections_total", 12.0, 1.0),
    _one("http_requests_in_progress", 23.0, 9.0),
    _one("http_requests_total", 180.0, 175.0),
    _one('errors_total{status="500"}', 15.0, 0.0),
    _one('errors_total{status="401"}', 2.0, 0.0),
    _one('errors_total{status="503"}', 1.0, 0.0),
    Series(
        ("errors_total",),
        (({"status": "500"}, 15.0), ({"status": "401"}, 2.0), ({"status": "503"}, 1.0)),
        (({"status": "500"}, 1.0), ({"status": "401"}, 0.0), ({"status": "503"}, 0.0)),
    ),
    _one("up{", 1.0, 1.0),
    _one("active_sessions", 340.0, 410.0),
)


def answer(query: str, *, sick: bool) -> list[tuple[dict[str, str], float]]:
    """The labelled values the emulator returns for `query` (empty when it does not know it)."""
    asked = compact(query)
    for series in TABLE:
        if all(compact(needle) in asked for needle in series.needles):
            return list(series.sick if sick else series.healthy)
    return []


async def query(request: web.Request) -> web.Response:
    text = request.query.get("query")
    if text is None and request.method == "POST":
        text = (await request.post()).get("query")  # type: ignore[assignment]
    if not isinstance(text, str) or not text.strip():
        return web.json_response(
            {"status": "error", "errorType": "bad_data", "error": "no query given"}, status=400
        )
    now = time.time()
    samples = request.app[ANSWERS_KEY].get(text)
    if samples is None:
        samples = answer(text, sick=request.app[STATE_KEY].sick)
    result = [{"metric": labels, "value": [now, repr(float(value))]} for labels, value in samples]
    return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})


def build_prometheus_app(state: ApiState, answers: Answers | None = None) -> web.Application:
    """The Prometheus emulator; sick or healthy values follow `state.sick` unless `answers` has one."""
    app = web.Application()
    app[STATE_KEY] = state
    app[ANSWERS_KEY] = answers if answers is not None else Answers()
    app.router.add_get("/api/v1/query", query)
    app.router.add_post("/api/v1/query", query)
    return app

"""The application backend the seed runbooks describe, emulated with aiohttp.

It answers every HTTP path the runbook catalogue probes — health, readiness and liveness in the
spellings of the different seeds, the monitoring endpoints, Prometheus text metrics — and the
admin endpoints the actions call (rate-limit flag, feature flags, circuit breaker), which record
what they receive. `ApiState.sick` switches between a degraded and a healthy backend.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.demo.exporter import Exporter, activity_lines

# Extra latency of the slow endpoints while sick: enough to cross the 100 ms response-time bar.
SICK_DELAY_S = 0.12
DEFAULT_RATE_LIMIT = 5


@dataclass
class AdminCall:
    """One request an admin endpoint received."""

    method: str
    path: str
    body: Any


@dataclass
class ApiState:
    """What the emulated backend reports; shared with the Prometheus emulator."""

    sick: bool = True
    name: str = "blue"
    rate_limit_per_minute: int = DEFAULT_RATE_LIMIT
    feature_flags: dict[str, dict[str, Any]] = field(default_factory=dict)
    circuit_breakers: dict[str, str] = field(default_factory=lambda: {"together_ai": "open"})
    admin_calls: list[AdminCall] = field(default_factory=list)
    # The app database `/metrics` counts connections in (postgres_exporter's series), if any.
    app_dsn: str | None = None
    exporter: Exporter = field(default_factory=Exporter)


STATE_KEY = web.AppKey("state", ApiState)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _state(request: web.Request) -> ApiState:
    return request.app[STATE_KEY]


async def health(request: web.Request) -> web.Response:
    if _state(request).sick:
        body = {"status": "unhealthy", "checks": {"database": "error", "message": "Connection timeout"}}
        return _json({**body, "timestamp": _now()}, 503)
    return _json({"status": "healthy", "timestamp": _now(), "checks": {"database": "ok"}})


async def ready(request: web.Request) -> web.Response:
    if _state(request).sick:
        return _json({"status": "not_ready", "checks": {"database": "ok", "redis": "timeout"}}, 503)
    return _json({"status": "ready", "checks": {"database": "ok", "redis": "ready"}})


async def live(request: web.Request) -> web.Response:
    sick = _state(request).sick
    resources = {"memory_mb": 1480 if sick else 310, "cpu_pct": 92 if sick else 12}
    return _json({"status": "alive", "resources": resources})


async def api_v1_health(request: web.Request) -> web.Response:
    if _state(request).sick:
        await asyncio.sleep(SICK_DELAY_S)
        return _json({"status": "degraded", "timestamp": _now()}, 503)
    return _json({"status": "healthy", "timestamp": _now()})


async def frontend_health(request: web.Request) -> web.Response:
    return _json({"status": "ok", "timestamp": _now()})


async def monitoring_health(request: web.Request) -> web.Response:
    sick = _state(request).sick
    body = {
        "status": "degraded" if sick else "ok",
        "database": "connected",
        "supabase": "connected",
        "pool": {"checked_out": 60 if sick else 8, "capacity": 60},
        "timestamp": _now(),
    }
    return _json(body, 503 if sick else 200)


async def monitoring_performance(request: web.Request) -> web.Response:
    sick = _state(request).sick
    return _json({"p95_ms": 2400 if sick else 45, "p99_ms": 3200 if sick else 120, "requests_per_s": 180})


async def monitoring_cache(request: web.Request) -> web.Response:
    hits, misses = (420, 580) if _state(request).sick else (880, 120)
    return _json({"hits": hits, "misses": misses, "hit_rate": round(100.0 * hits / (hits + misses), 1)})


async def monitoring_pool(request: web.Request) -> web.Response:
    checked_out = 60 if _state(request).sick else 8
    return _json(
        {
            "pool_size": 20,
            "max_overflow": 40,
            "checked_out": checked_out,
            "utilization_pct": round(100.0 * checked_out / 60, 1),
        }
    )


async def reconciliation_status(request: web.Request) -> web.Response:
    if _state(request).sick:
        await asyncio.sleep(SICK_DELAY_S)
    return _json({"status": "ok", "pending": 3, "last_run": _now()})


async def metrics(request: web.Request) -> web.Response:
    state = _state(request)
    sick = state.sick
    errors = {"500": 15, "401": 2, "503": 1} if sick else {"500": 0, "401": 0, "503": 0}
    # The series the seed alert rules read (deploy/prometheus/opsbot-seed-alerts.yml).
    state.exporter.advance(sick=sick)
    lines = [
        *state.exporter.lines(sick=sick, breakers=state.circuit_breakers),
        *await activity_lines(state.app_dsn, sick=sick),
        "# HELP errors_total Errors returned, by status.",
        "# TYPE errors_total counter",
        *(f'errors_total{{status="{status}"}} {count}' for status, count in errors.items()),
        "# HELP process_resident_memory_bytes Resident memory size in bytes.",
        "# TYPE process_resident_memory_bytes gauge",
        f"process_resident_memory_bytes {(1480 if sick else 310) * 1048576}",
    ]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain", charset="utf-8")


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return raw.decode("utf-8", errors="replace")


async def rate_limit_get(request: web.Request) -> web.Response:
    return _json({"limit_per_minute": _state(request).rate_limit_per_minute})


async def rate_limit_post(request: web.Request) -> web.Response:
    state, body = _state(request), await _body(request)
    state.admin_calls.append(AdminCall(request.method, request.path, body))
    limit = body.get("limit_per_minute") if isinstance(body, dict) else None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        return _json({"error": "limit_per_minute must be a whole number"}, 400)
    state.rate_limit_per_minute = limit
    return _json({"limit_per_minute": limit})


async def feature_flags_get(request: web.Request) -> web.Response:
    return _json({"flags": _state(request).feature_flags})


async def feature_flags_post(request: web.Request) -> web.Response:
    state, body = _state(request), await _body(request)
    state.admin_calls.append(AdminCall(request.method, request.path, body))
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        return _json({"error": "name is required"}, 400)
    flag = state.feature_flags.setdefault(body["name"], {})
    flag.update({key: value for key, value in body.items() if key != "name"})
    return _json({"name": body["name"], **flag})


async def circuit_breaker_post(request: web.Request) -> web.Response:
    state, body = _state(request), await _body(request)
    state.admin_calls.append(AdminCall(request.method, request.path, body))
    if not isinstance(body, dict) or body.get("state") not in ("open", "closed"):
        return _json({"error": "state must be open or closed"}, 400)
    state.circuit_breakers[str(body.get("dependency", "default"))] = body["state"]
    return _json({"dependency": body.get("dependency"), "state": body["state"]})


async def service_health(request: web.Request) -> web.Response:
    if _state(request).sick:
        return _json({"status": "unhealthy", "timestamp": _now()}, 503)
    return _json({"status": "healthy", "timestamp": _now()})


async def provider_models(request: web.Request) -> web.Response:
    if _state(request).sick:
        return _json({"error": {"message": "upstream unavailable", "type": "service_unavailable"}}, 503)
    return _json({"object": "list", "data": [{"id": "meta-llama/Llama-3.3-70B-Instruct-Turbo"}]})


def build_service_app(state: ApiState) -> web.Application:
    """A neighbour of the backend — RAG, guardrails, the frontend, the AI provider — with only the
    endpoints the catalogue probes on it (`/health`, `/api/health`, `/v1/models`), red while sick."""
    app = web.Application()
    app[STATE_KEY] = state
    for path in ("/health", "/api/health"):
        app.router.add_get(path, service_health)
    app.router.add_get("/v1/models", provider_models)
    return app


def build_api_app(state: ApiState) -> web.Application:
    """The backend emulator; every route reads `state` at request time."""
    app = web.Application()
    app[STATE_KEY] = state
    get = [
        ("/health", health),
        ("/ready", ready),
        ("/live", live),
        ("/health/live", live),
        ("/health/readiness", ready),
        ("/health/detailed", health),
        ("/api/v1/health", api_v1_health),
        ("/api/v1/ready", ready),
        ("/api/health", frontend_health),
        ("/api/monitoring/health", monitoring_health),
        ("/api/monitoring/performance", monitoring_performance),
        ("/api/monitoring/cache/stats", monitoring_cache),
        ("/api/monitoring/database/pool", monitoring_pool),
        ("/api/v1/reconciliation/status", reconciliation_status),
        ("/metrics", metrics),
        ("/admin/feature-flags/rate-limit", rate_limit_get),
        ("/api/admin/feature-flags", feature_flags_get),
    ]
    for path, handler in get:
        app.router.add_get(path, handler)
    app.router.add_post("/admin/feature-flags/rate-limit", rate_limit_post)
    app.router.add_post("/api/admin/feature-flags", feature_flags_post)
    app.router.add_post("/admin/circuit-breaker", circuit_breaker_post)
    return app

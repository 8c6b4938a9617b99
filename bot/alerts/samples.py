"""Sample Alertmanager (webhook version 4) notifications made from the seed runbooks' alerts.

The same alerts `deploy/prometheus/opsbot-seed-alerts.yml` defines (names, labels, annotations),
in the body Alertmanager would POST for them when grouped by `alertname` and `service` — for
`opsbot alerts send`, for the demo's stand-in sender when Prometheus is not installed, and for tests.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus

GO_ZERO_TIME = "0001-01-01T00:00:00Z"
RUNBOOK_BASE = "https://opsbot.example.com/runbooks/"


@dataclass(frozen=True)
class Sample:
    alertname: str
    severity: str
    service: str
    runbook: str
    summary: str
    description: str
    expr: str
    extra_labels: tuple[tuple[str, str], ...] = ()

    def labels(self) -> dict[str, str]:
        return {
            "alertname": self.alertname,
            "severity": self.severity,
            "service": self.service,
            "runbook": self.runbook,
            **dict(self.extra_labels),
        }

    def annotations(self) -> dict[str, str]:
        return {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": RUNBOOK_BASE + self.runbook,
        }


SAMPLES: dict[str, Sample] = {
    "db-leak": Sample(
        "DatabaseConnectionLeak",
        "critical",
        "postgres",
        "db.connections",
        "Possible connection leak detected",
        "62 connections to PostgreSQL for 5 minutes (more than 50): idle connections hold pool slots "
        "until requests wait for a connection.",
        "sum(pg_stat_activity_count) > 50",
    ),
    "5xx": Sample(
        "APIHighErrorRate",
        "critical",
        "api",
        "api.errors",
        "API 5xx error rate above 5 %",
        "7.40 % of API requests answered 5xx over 5 minutes (critical above 5 %).",
        'sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.05',
    ),
    "latency": Sample(
        "APIHighLatency",
        "critical",
        "api",
        "api.latency",
        "API p95 latency above 2 s",
        "API p95 latency is 2.8 s over 5 minutes (critical above 2 s).",
        "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m]))) > 2",
    ),
    "service-down": Sample(
        "ServiceDown",
        "critical",
        "api",
        "health.services",
        "api is down",
        "api (127.0.0.1:8000) has failed its scrape or health check for more than 1 minute.",
        "up == 0 or probe_success == 0",
        (("instance", "127.0.0.1:8000"), ("job", "api")),
    ),
    "disk": Sample(
        "HostDiskUsageHigh",
        "critical",
        "node",
        "host.disk",
        "Disk / on node-1:9100 above 90 %",
        "Disk / on node-1:9100 is 93.5 % used (critical above 90 %).",
        '100 * (1 - node_filesystem_avail_bytes{mountpoint="/"} / node_filesystem_size_bytes) > 90',
        (("instance", "node-1:9100"), ("job", "node")),
    ),
    "memory": Sample(
        "HostMemoryHigh",
        "warning",
        "node",
        "host.memory",
        "Memory on node-1:9100 above 80 %",
        "Memory on node-1:9100 is 86.2 % used (warning above 80 %).",
        "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes) > 80",
        (("instance", "node-1:9100"), ("job", "node")),
    ),
    "circuit-breaker": Sample(
        "CircuitBreakerOpen",
        "warning",
        "api",
        "deps.ai",
        "Circuit breaker to openai is open",
        "The API's circuit breaker to openai has been open for a minute: calls to it fail fast.",
        "max by (dependency) (circuit_breaker_state) >= 1",
        (("dependency", "openai"),),
    ),
    "cache": Sample(
        "CacheHitRateLow",
        "warning",
        "cache",
        "cache.stats",
        "Cache hit rate below 60 %",
        "The Redis cache answers 42.0 % of lookups (below 60 %: run the cache fix; target above 80 %).",
        "hit rate < 60",
    ),
}


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _fingerprint(labels: dict[str, str]) -> str:
    """16 hex digits like Alertmanager's (its own is a 64-bit hash of the label set)."""
    return hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest()[:16]


def alertmanager_notification(
    name: str,
    *,
    resolved: bool = False,
    now: datetime | None = None,
    prometheus_url: str = "http://127.0.0.1:9090",
    alertmanager_url: str = "http://127.0.0.1:9093",
    receiver: str = "opsbot",
) -> dict[str, Any]:
    """The webhook body Alertmanager sends for sample `name` (see `SAMPLES`), firing or resolved."""
    sample = SAMPLES[name]
    now = now or datetime.now(UTC)
    labels = sample.labels()
    group = {"alertname": sample.alertname, "service": sample.service}
    status = "resolved" if resolved else "firing"
    alert = {
        "status": status,
        "labels": labels,
        "annotations": sample.annotations(),
        "startsAt": _rfc3339(now - timedelta(minutes=6)),
        "endsAt": _rfc3339(now) if resolved else GO_ZERO_TIME,
        "generatorURL": f"{prometheus_url}/graph?g0.expr={quote_plus(sample.expr)}&g0.tab=1",
        "fingerprint": _fingerprint(labels),
    }
    group_key = "{}:{" + ", ".join(f'{key}="{value}"' for key, value in sorted(group.items())) + "}"
    return {
        "receiver": receiver,
        "status": status,
        "alerts": [alert],
        "groupLabels": group,
        "commonLabels": dict(labels),
        "commonAnnotations": sample.annotations(),
        "externalURL": alertmanager_url,
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
    }

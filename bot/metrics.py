"""Prometheus metrics, one registry per running app so two apps in one process never mix counts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0)


class Metrics:
    """The bot's counters and histograms; exposed on `/metrics`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "opsbot_slack_requests",
            "Slack requests handled, by kind (command, block_actions, event…) and outcome.",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.ack_latency = Histogram(
            "opsbot_ack_latency_seconds",
            "Time from receiving a Slack request to sending its acknowledgement.",
            ["kind"],
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self.web_api_calls = Counter(
            "opsbot_slack_web_api_calls",
            "Slack Web API calls made by the bot, by method and outcome.",
            ["method", "outcome"],
            registry=self.registry,
        )
        self._outbound()
        self._alerts()
        self.duplicate_deliveries = Counter(
            "opsbot_duplicate_deliveries",
            "Slack deliveries dropped because they were already handled (retries, redeliveries).",
            ["kind"],
            registry=self.registry,
        )
        self.coordination_backend = Gauge(
            "opsbot_coordination_redis",
            "1 when coordination (dedupe, locks) uses Redis, 0 when it is in-process.",
            registry=self.registry,
        )
        self.tasks_in_flight = Gauge(
            "opsbot_background_tasks",
            "Background tasks started by handlers and not yet finished.",
            registry=self.registry,
        )

    def _outbound(self) -> None:
        """The outbound scheduler's: waiting for Slack's budgets, merging, and Slack's 429s."""
        self.slack_outbound_wait = Histogram(
            "opsbot_slack_outbound_wait_seconds",
            "Time a Web API call waited for its Slack budget, by whom it serves (person, announce, bulk).",
            ["priority"],
            buckets=(0.001, 0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
            registry=self.registry,
        )
        self.slack_outbound_queued = Gauge(
            "opsbot_slack_outbound_queued",
            "Web API calls waiting for their Slack budget now, by priority.",
            ["priority"],
            registry=self.registry,
        )
        self.slack_outbound_merged = Counter(
            "opsbot_slack_outbound_merged",
            "Message updates merged into a newer update of the same message while waiting.",
            registry=self.registry,
        )
        self.slack_ratelimited = Counter(
            "opsbot_slack_ratelimited",
            "429 answers from Slack (each retried after Retry-After), by method.",
            ["method"],
            registry=self.registry,
        )
        self.slack_budget_shared = Gauge(
            "opsbot_slack_budget_shared",
            "1 while Slack budgets are kept in Redis for every replica, 0 while this replica keeps its own.",
            registry=self.registry,
        )

    def _alerts(self) -> None:
        self.alert_notifications = Counter(
            "opsbot_alert_notifications",
            "Alert notifications by source and outcome (received, duplicate, routed, refused).",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.alert_card_latency = Histogram(
            "opsbot_alert_card_latency_seconds",
            "Time from receiving an alert notification to its group's card being posted or updated.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

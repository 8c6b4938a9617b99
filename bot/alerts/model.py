"""One alert notification, whatever sent it: the shape the receivers produce and the service consumes.

Alertmanager's webhook (version 4), Grafana alerting's webhook and the generic JSON shape are each
parsed by their own model in `bot.alerts.payloads` and turned into a `Notification`; nothing after
that point knows which source sent it. Label and annotation values are untrusted text: they reach
runbooks only as parameters validated like Slack input (`RouteDecision.params`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Source = Literal["alertmanager", "grafana", "generic"]
AlertStatus = Literal["firing", "resolved"]
DeclareMode = Literal["auto", "offer", "never"]


class Alert(BaseModel):
    """One alert of a group, identified by its fingerprint (Alertmanager's, or a hash of its labels)."""

    model_config = ConfigDict(frozen=True)

    fingerprint: str = Field(min_length=1, max_length=128)
    status: AlertStatus
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime
    ends_at: datetime | None = None
    generator_url: str | None = None


class Notification(BaseModel):
    """One delivery from a source: a group of alerts that share `group_key`."""

    model_config = ConfigDict(frozen=True)

    source: Source
    # Alertmanager's groupKey; for other sources, a stable key made from the group labels.
    group_key: str = Field(min_length=1, max_length=1000)
    status: AlertStatus
    group_labels: dict[str, str] = Field(default_factory=dict)
    common_labels: dict[str, str] = Field(default_factory=dict)
    common_annotations: dict[str, str] = Field(default_factory=dict)
    external_url: str | None = None
    alerts: list[Alert] = Field(min_length=1)

    @property
    def firing(self) -> list[Alert]:
        return [alert for alert in self.alerts if alert.status == "firing"]


class RouteDecision(BaseModel):
    """What a notification should do, decided by the routes before anything is done."""

    model_config = ConfigDict(frozen=True)

    route: str  # the matching route's name, or "default"
    channel: str
    runbook_id: str | None
    # Parameters for the runbook, already validated against its params (invalid labels are dropped
    # and named in `problems`, never passed on).
    params: dict[str, str] = Field(default_factory=dict)
    severity: str | None = None  # p0..p3, from the alert's severity label through the route's map
    declare: DeclareMode = "never"
    attach: bool = True
    service: str | None = None
    problems: list[str] = Field(default_factory=list)

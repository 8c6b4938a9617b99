"""The webhook bodies opsbot accepts, one pydantic model per source, each turned into a `Notification`.

- Alertmanager's webhook, version "4" (`webhook_config`): what Prometheus' Alertmanager POSTs.
- Grafana alerting's webhook contact point (unified alerting, version "1").
- A small generic shape for anything else that can send JSON:

      {"group": "checkout-5xx", "status": "firing",
       "alerts": [{"name": "High5xxRate", "labels": {"service": "api"}, "annotations": {},
                   "starts_at": "2026-12-04T10:00:00Z", "ends_at": null, "id": "optional"}]}

Everything in a body is untrusted: at most 1,000 alerts, label names like Prometheus'
(`^[a-zA-Z_][a-zA-Z0-9_]*$`), label values at most 4 kB (longer is refused: a label is part of an
alert's identity), annotation values cut at 16 kB (they are only shown). NUL is refused anywhere;
other control characters are removed (newlines and tabs stay in annotations, where they are text).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from bot.alerts.model import Alert, AlertStatus, Notification, Source

MAX_ALERTS = 1000
MAX_LABELS = 100
MAX_LABEL_VALUE = 4096
MAX_ANNOTATION_VALUE = 16384
MAX_URL = 2048
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# C0 controls, DEL and C1 controls; newline and tab are kept where text is free-form.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_IN_LABEL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Alertmanager and Grafana write Go's zero time for "not ended yet".
_GO_ZERO_TIME = "0001-01-01T00:00:00Z"
_FINGERPRINT = r"^[A-Za-z0-9_.:-]{1,128}$"


class PayloadError(ValueError):
    """A body that is not a notification; the message names the first problem, short."""


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("NUL characters are not allowed")
    return text


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels")
    cleaned: dict[str, str] = {}
    for name, value in labels.items():
        if len(name) > 128 or not LABEL_NAME.fullmatch(name):
            raise ValueError("label names must match ^[a-zA-Z_][a-zA-Z0-9_]*$ (at most 128 characters)")
        if len(value) > MAX_LABEL_VALUE:
            raise ValueError(f"label {name} is longer than {MAX_LABEL_VALUE} characters")
        cleaned[name] = _CONTROL_IN_LABEL.sub("", _no_nul(value))
    return cleaned


def _check_annotations(annotations: dict[str, str]) -> dict[str, str]:
    if len(annotations) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} annotations")
    cleaned: dict[str, str] = {}
    for name, value in annotations.items():
        if len(name) > 128 or not LABEL_NAME.fullmatch(name):
            raise ValueError("annotation names must match ^[a-zA-Z_][a-zA-Z0-9_]*$ (at most 128 characters)")
        text = _CONTROL.sub("", _no_nul(value))
        cleaned[name] = text if len(text) <= MAX_ANNOTATION_VALUE else text[: MAX_ANNOTATION_VALUE - 1] + "…"
    return cleaned


def _zero_time_is_none(value: Any) -> Any:
    return None if value in (_GO_ZERO_TIME, "", None) else value


def _web_url(value: Any) -> Any:
    """A link kept only when it is an http(s) URL of sane length; anything else is dropped, not refused."""
    if not isinstance(value, str) or len(value) > MAX_URL or _CONTROL_IN_LABEL.search(value):
        return None
    return value if value.startswith(("http://", "https://")) else None


Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]
Annotations = Annotated[dict[str, str], AfterValidator(_check_annotations)]
EndsAt = Annotated[AwareDatetime | None, BeforeValidator(_zero_time_is_none)]
WebUrl = Annotated[str | None, BeforeValidator(_web_url)]
Fingerprint = Annotated[str | None, Field(pattern=_FINGERPRINT)]
GroupKey = Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(_no_nul)]


class _Wire(BaseModel):
    """A body from outside: unknown fields are ignored (senders add fields over time)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def fingerprint_of(labels: Mapping[str, str]) -> str:
    """A stable id for an alert that came without one: sha256 of its sorted labels."""
    canonical = json.dumps(sorted(labels.items()), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def common_labels(label_sets: list[dict[str, str]]) -> dict[str, str]:
    """The labels every set has with the same value (what Alertmanager calls commonLabels)."""
    if not label_sets:
        return {}
    first, *rest = label_sets
    return {name: value for name, value in first.items() if all(other.get(name) == value for other in rest)}


# --- Alertmanager (webhook version 4) ------------------------------------------------------------


class AlertmanagerAlert(_Wire):
    """One alert as Alertmanager sends it (field names are the wire's own camelCase)."""

    status: AlertStatus
    labels: Labels
    annotations: Annotations = Field(default_factory=dict)
    startsAt: AwareDatetime
    endsAt: EndsAt = None
    generatorURL: WebUrl = None
    fingerprint: Fingerprint = None

    def to_alert(self) -> Alert:
        return Alert(
            fingerprint=self.fingerprint or fingerprint_of(self.labels),
            status=self.status,
            labels=self.labels,
            annotations=self.annotations,
            starts_at=self.startsAt,
            ends_at=self.endsAt,
            generator_url=self.generatorURL,
        )


class AlertmanagerPayload(_Wire):
    """Alertmanager's webhook body (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config)."""

    version: Literal["4"]
    groupKey: GroupKey
    truncatedAlerts: int = Field(0, ge=0)
    status: AlertStatus
    receiver: str = Field("", max_length=1000)
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    commonAnnotations: Annotations = Field(default_factory=dict)
    externalURL: WebUrl = None
    alerts: list[AlertmanagerAlert] = Field(min_length=1, max_length=MAX_ALERTS)

    def to_notification(self, source: Source = "alertmanager") -> Notification:
        return Notification(
            source=source,
            group_key=self.groupKey,
            status=self.status,
            group_labels=self.groupLabels,
            common_labels=self.commonLabels,
            common_annotations=self.commonAnnotations,
            external_url=self.externalURL,
            alerts=[alert.to_alert() for alert in self.alerts],
        )


# --- Grafana alerting (unified alerting's webhook contact point) ---------------------------------


class GrafanaAlert(AlertmanagerAlert):
    """Grafana's alert: Alertmanager's fields plus links and the query values (shown, never trusted)."""

    values: dict[str, float | None] | None = None
    valueString: str = Field("", max_length=MAX_ANNOTATION_VALUE)
    silenceURL: WebUrl = None
    dashboardURL: WebUrl = None
    panelURL: WebUrl = None


class GrafanaPayload(AlertmanagerPayload):
    """Grafana's webhook body: Alertmanager's shape, version "1", plus orgId, title, state and message."""

    version: Literal["1"]  # type: ignore[assignment]
    orgId: int = 0
    title: str = Field("", max_length=MAX_ANNOTATION_VALUE)
    state: str = Field("", max_length=100)
    message: str = Field("", max_length=1_000_000)
    alerts: list[GrafanaAlert] = Field(min_length=1, max_length=MAX_ALERTS)  # type: ignore[assignment]

    def to_notification(self, source: Source = "grafana") -> Notification:
        return super().to_notification(source)


# --- the generic shape ----------------------------------------------------------------------------


class GenericAlert(_Wire):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    status: AlertStatus = "firing"
    labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)
    starts_at: AwareDatetime | None = None
    ends_at: EndsAt = None
    id: Fingerprint = None
    url: WebUrl = None

    def to_alert(self, received: datetime) -> Alert:
        labels = {"alertname": self.name, **self.labels}
        return Alert(
            fingerprint=self.id or fingerprint_of(labels),
            status=self.status,
            labels=labels,
            annotations=self.annotations,
            starts_at=self.starts_at or received,
            ends_at=self.ends_at,
            generator_url=self.url,
        )


class GenericPayload(_Wire):
    """`{"group", "status"?, "alerts": [{"name", "labels", "annotations", "starts_at", "ends_at", "id"}]}`.

    `group` names the alert group (one card per group); the notification is firing while any of its
    alerts is; an alert without `id` is identified by its labels (with `alertname` = `name`).
    """

    group: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    status: AlertStatus | None = None
    alerts: list[GenericAlert] = Field(min_length=1, max_length=MAX_ALERTS)

    def to_notification(self, received: datetime | None = None) -> Notification:
        now = received or datetime.now(UTC)
        alerts = [alert.to_alert(now) for alert in self.alerts]
        firing = any(alert.status == "firing" for alert in alerts)
        return Notification(
            source="generic",
            group_key=f"generic:{self.group}",
            status=self.status or ("firing" if firing else "resolved"),
            group_labels={},
            common_labels=common_labels([alert.labels for alert in alerts]),
            alerts=alerts,
        )


PAYLOADS: dict[Source, type[AlertmanagerPayload] | type[GenericPayload]] = {
    "alertmanager": AlertmanagerPayload,
    "grafana": GrafanaPayload,
    "generic": GenericPayload,
}


def parse_notification(source: Source, body: bytes | str) -> Notification:
    """The body a source sent, as a `Notification`; raises `PayloadError` naming the first problem."""
    try:
        payload = PAYLOADS[source].model_validate_json(body)
    except ValidationError as exc:
        raise PayloadError(first_problem(exc)) from None
    return payload.to_notification()


def first_problem(exc: ValidationError) -> str:
    """`alerts.0.labels: label names must match …`: pydantic's first error, without the value given."""
    error = exc.errors(include_input=False, include_url=False)[0]
    if error["type"] == "json_invalid":
        return "body is not JSON"
    where = ".".join(str(part) for part in error["loc"]) or "body"
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}"[:300]

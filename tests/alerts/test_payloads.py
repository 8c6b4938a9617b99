"""Each source's webhook body, in the shape its sender really produces, parsed to a Notification;
and the limits that keep hostile bodies out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.alerts.payloads import (
    MAX_ANNOTATION_VALUE,
    GenericPayload,
    PayloadError,
    fingerprint_of,
    parse_notification,
)
from bot.alerts.samples import SAMPLES, alertmanager_notification

# What Alertmanager 0.25 (Debian's prometheus-alertmanager) POSTs for a Prometheus rule, field for
# field in its order: nanosecond startsAt from Prometheus, Go's zero time as endsAt while firing,
# generatorURL with its \u0026, a 16-hex fingerprint, the route's group key.
ALERTMANAGER_0_25_FIRING = r"""{"receiver":"opsbot","status":"firing","alerts":[{"status":"firing",
"labels":{"alertname":"DatabaseConnectionLeak","runbook":"db.connections","service":"postgres",
"severity":"critical"},"annotations":{"description":"62 connections to PostgreSQL for 5 minutes (more
 than 50): idle connections hold pool slots until requests wait for a connection.","runbook_url":
"https://opsbot.example.com/runbooks/db.connections","summary":"Possible connection leak detected"},
"startsAt":"2026-12-04T18:20:31.512746397Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":
"http://127.0.0.1:9090/graph?g0.expr=sum%28pg_stat_activity_count%29+%3E+50\u0026g0.tab=1",
"fingerprint":"4a4c1c4f4d1c7f3e"}],"groupLabels":{"alertname":"DatabaseConnectionLeak","service":
"postgres"},"commonLabels":{"alertname":"DatabaseConnectionLeak","runbook":"db.connections","service":
"postgres","severity":"critical"},"commonAnnotations":{"description":"62 connections","runbook_url":
"https://opsbot.example.com/runbooks/db.connections","summary":"Possible connection leak detected"},
"externalURL":"http://opsbot-am:9093","version":"4","groupKey":
"{}:{alertname=\"DatabaseConnectionLeak\", service=\"postgres\"}","truncatedAlerts":0}"""

# Grafana alerting's webhook contact point (unified alerting), as its documentation shows it.
GRAFANA = {
    "receiver": "opsbot",
    "status": "firing",
    "orgId": 1,
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
            "annotations": {"summary": "High memory on us-1", "runbook_url": "https://r.example/host.memory"},
            "startsAt": "2021-10-12T09:51:03.157076+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit",
            "fingerprint": "c6eadffa33fcdf37",
            "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"B": 44.23943737541908, "C": 1},
            "valueString": "[ var='B' labels={} value=44.2 ], [ var='C' labels={} value=1 ]",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "High CPU usage", "team": "blue", "zone": "eu-1"},
            "annotations": {},
            "startsAt": "2021-10-12T09:56:03.157076+02:00",
            "endsAt": "2021-10-12T10:06:03.157076+02:00",
            "generatorURL": "https://play.grafana.org/alerting/d1rdpdv7k/edit",
            "fingerprint": "bc97ff14869b13e3",
            "values": None,
            "valueString": "",
        },
    ],
    "groupLabels": {},
    "commonLabels": {"team": "blue"},
    "commonAnnotations": {},
    "externalURL": "https://play.grafana.org/",
    "version": "1",
    "groupKey": '{}:{alertname="High memory usage"}',
    "truncatedAlerts": 0,
    "title": "[FIRING:1, RESOLVED:1]  (blue)",
    "state": "alerting",
    "message": "**Firing**\n\nValue: B=44.2, C=1\nLabels:\n - alertname = High memory usage\n",
}


def test_alertmanager_0_25_body() -> None:
    notification = parse_notification("alertmanager", ALERTMANAGER_0_25_FIRING.replace("\n", ""))
    assert notification.source == "alertmanager"
    assert notification.status == "firing"
    assert notification.group_key == '{}:{alertname="DatabaseConnectionLeak", service="postgres"}'
    assert notification.group_labels == {"alertname": "DatabaseConnectionLeak", "service": "postgres"}
    assert notification.common_labels["runbook"] == "db.connections"
    assert notification.external_url == "http://opsbot-am:9093"
    [alert] = notification.alerts
    assert alert.fingerprint == "4a4c1c4f4d1c7f3e"
    assert alert.starts_at == datetime(2026, 12, 4, 18, 20, 31, 512746, tzinfo=UTC)
    assert alert.ends_at is None
    assert alert.generator_url is not None and alert.generator_url.endswith("&g0.tab=1")
    assert alert.annotations["summary"] == "Possible connection leak detected"


def test_alertmanager_resolved_body_keeps_its_end_time() -> None:
    body = alertmanager_notification("5xx", resolved=True, now=datetime(2026, 12, 4, 12, 0, tzinfo=UTC))
    notification = parse_notification("alertmanager", json.dumps(body))
    assert notification.status == "resolved"
    assert notification.alerts[0].ends_at == datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    assert notification.firing == []


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_sample_is_a_valid_alertmanager_notification(name: str) -> None:
    notification = parse_notification("alertmanager", json.dumps(alertmanager_notification(name)))
    assert notification.common_labels["alertname"] == SAMPLES[name].alertname
    assert notification.alerts[0].labels["runbook"] == SAMPLES[name].runbook


@pytest.mark.parametrize("status", ["firing", "resolved"])
def test_real_alertmanager_captures_parse(status: str) -> None:
    """Bodies a real Alertmanager 0.25 sent (captured by tests/alerts/test_real_components.py)."""
    path = Path(__file__).parent / "fixtures" / f"alertmanager_v4_{status}.json"
    if not path.exists():
        pytest.skip(f"NOT TESTED: {path.name} has not been captured from a real Alertmanager")
    notification = parse_notification("alertmanager", path.read_bytes())
    assert notification.status == status
    assert notification.group_key.startswith("{}:{alertname=")
    assert all(alert.status == status for alert in notification.alerts)
    assert all((alert.ends_at is None) is (status == "firing") for alert in notification.alerts)
    assert all(len(alert.fingerprint) == 16 for alert in notification.alerts)


def test_grafana_body() -> None:
    notification = parse_notification("grafana", json.dumps(GRAFANA))
    assert (notification.source, notification.status) == ("grafana", "firing")
    assert notification.group_key == '{}:{alertname="High memory usage"}'
    assert [alert.status for alert in notification.alerts] == ["firing", "resolved"]
    assert notification.alerts[0].ends_at is None
    assert notification.alerts[1].ends_at == datetime(2021, 10, 12, 8, 6, 3, 157076, tzinfo=UTC)
    assert notification.alerts[0].annotations["runbook_url"] == "https://r.example/host.memory"
    assert notification.common_labels == {"team": "blue"}


def test_grafana_refuses_alertmanager_version() -> None:
    with pytest.raises(PayloadError, match="version"):
        parse_notification("grafana", json.dumps({**GRAFANA, "version": "4"}))


def test_generic_body_without_ids() -> None:
    body = {
        "group": "checkout-5xx",
        "alerts": [
            {
                "name": "High5xx",
                "labels": {"service": "checkout", "zone": "a"},
                "starts_at": "2026-12-04T10:00:00Z",
            },
            {"name": "High5xx", "labels": {"service": "checkout", "zone": "b"}, "status": "resolved"},
        ],
    }
    received = datetime(2026, 12, 4, 11, 0, tzinfo=UTC)
    notification = GenericPayload.model_validate_json(json.dumps(body)).to_notification(received)
    assert (notification.source, notification.group_key) == ("generic", "generic:checkout-5xx")
    assert notification.status == "firing"
    assert notification.common_labels == {"alertname": "High5xx", "service": "checkout"}
    first, second = notification.alerts
    assert first.fingerprint == fingerprint_of({"alertname": "High5xx", "service": "checkout", "zone": "a"})
    assert first.fingerprint != second.fingerprint
    assert second.starts_at == received


def test_generic_fingerprint_ignores_label_order_and_keeps_given_ids() -> None:
    assert fingerprint_of({"a": "1", "b": "2"}) == fingerprint_of({"b": "2", "a": "1"})
    body = {
        "group": "g",
        "status": "resolved",
        "alerts": [{"name": "x", "id": "given-1", "status": "resolved"}],
    }
    notification = parse_notification("generic", json.dumps(body))
    assert notification.alerts[0].fingerprint == "given-1"
    assert notification.status == "resolved"


def _alertmanager(**alert_changes: object) -> str:
    body = alertmanager_notification("db-leak")
    body["alerts"][0] = {**body["alerts"][0], **alert_changes}
    return json.dumps(body)


REFUSED = [
    ("not JSON", "{", "body is not JSON"),
    ("array", "[]", "body: Input should be an object"),
    ("wrong version", json.dumps({**alertmanager_notification("db-leak"), "version": "3"}), "version"),
    (
        "1001 alerts",
        json.dumps(
            {
                **alertmanager_notification("db-leak"),
                "alerts": [alertmanager_notification("db-leak")["alerts"][0]] * 1001,
            }
        ),
        "at most 1000",
    ),
    ("bad label name", _alertmanager(labels={"a-b": "x"}), "label names"),
    ("label value over 4 kB", _alertmanager(labels={"a": "x" * 4097}), "longer than 4096"),
    ("NUL in label", _alertmanager(labels={"a": "x\x00"}), "NUL"),
    ("NUL in annotation", _alertmanager(annotations={"a": "x\x00"}), "NUL"),
    ("label value not text", _alertmanager(labels={"a": 5}), "valid string"),
    ("time without zone", _alertmanager(startsAt="2026-12-04T10:00:00"), "timezone"),
    ("bad status", _alertmanager(status="pending"), "status"),
    ("fingerprint with spaces", _alertmanager(fingerprint="a b"), "fingerprint"),
]


@pytest.mark.parametrize(("body", "words"), [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED])
def test_refused(body: str, words: str) -> None:
    with pytest.raises(PayloadError) as refused:
        parse_notification("alertmanager", body)
    assert words in str(refused.value)
    assert len(str(refused.value)) <= 300


def test_label_value_of_exactly_4_kb_is_accepted() -> None:
    notification = parse_notification("alertmanager", _alertmanager(labels={"a": "x" * 4096}))
    assert len(notification.alerts[0].labels["a"]) == 4096


def test_control_characters_are_stripped_and_long_annotations_cut() -> None:
    body = _alertmanager(
        labels={"alertname": "A\x1b[31mB\x07"},
        annotations={"description": "line 1\nline\t2\x1b[0m\x7f", "long": "y" * (MAX_ANNOTATION_VALUE + 10)},
    )
    alert = parse_notification("alertmanager", body).alerts[0]
    assert alert.labels["alertname"] == "A[31mB"
    assert alert.annotations["description"] == "line 1\nline\t2[0m"
    assert len(alert.annotations["long"]) == MAX_ANNOTATION_VALUE
    assert alert.annotations["long"].endswith("…")


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "file:///etc/passwd", "http://x/\x00", "http://" + "h" * 3000]
)
def test_links_that_are_not_web_urls_are_dropped(url: str) -> None:
    notification = parse_notification("alertmanager", _alertmanager(generatorURL=url))
    assert notification.alerts[0].generator_url is None

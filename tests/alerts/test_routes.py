"""Alert routes: Alertmanager's matcher semantics, the decision a notification gets (runbook,
parameters checked like Slack input, severity, service), and the routes file's errors and schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.alerts.model import Alert, Notification
from bot.alerts.routes import AlertRoutes, RoutesError, RoutesFile, load_routes, parse_matcher
from bot.cli_alerts import schema_text
from bot.config import ConfigError, load_settings
from bot.runbooks.catalogue import Catalogue, load_catalogue
from bot.runtime import load_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(REPO / "runbooks")


MATCHERS = [
    # (matcher, labels, matches)
    ('alertname="X"', {"alertname": "X"}, True),
    ('alertname="X"', {"alertname": "XY"}, False),
    ("alertname=X", {"alertname": "X"}, True),
    ('alertname = "X" ', {"alertname": "X"}, True),
    ('team=""', {}, True),  # a missing label is the empty string
    ('team=""', {"team": "a"}, False),
    ('team!="a"', {}, True),
    ('team!="a"', {"team": "a"}, False),
    ('severity=~"warning|critical"', {"severity": "critical"}, True),
    ('severity=~"warning|critical"', {"severity": "critical-ish"}, False),  # anchored at the end
    ('severity=~"warn"', {"severity": "warning"}, False),  # anchored: not a search
    ('severity=~"crit"', {"severity": "xcrit"}, False),  # anchored at the start
    ('severity=~".*"', {}, True),
    ('severity!~"info|debug"', {"severity": "critical"}, True),
    ('severity!~"info|debug"', {"severity": "info"}, False),
    ('severity!~"info"', {}, True),
    ('summary="say \\"hi\\""', {"summary": 'say "hi"'}, True),
    ('path="a\\\\b"', {"path": "a\\b"}, True),
    ('text="two\\nlines"', {"text": "two\nlines"}, True),
    ('instance=~"db-[0-9]+:9187"', {"instance": "db-12:9187"}, True),
    ('instance=~"db-[0-9]+:9187"', {"instance": "db-x:9187"}, False),
]


@pytest.mark.parametrize(("text", "labels", "matches"), MATCHERS)
def test_matcher_semantics(text: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_matcher(text).matches(labels) is matches


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('alertname=~"("', "invalid regular expression"),
        ("1abc=x", "is not a matcher"),
        ("alertname", "is not a matcher"),
        ('alertname="X', "closing quote"),
        ('alertname="a"b"', "must be escaped"),
        ('alertname="\\t"', "escapes"),
    ],
)
def test_bad_matchers_are_refused(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_matcher(text)


def notification(
    labels: dict[str, str], annotations: dict[str, str] | None = None, *, common: bool = True
) -> Notification:
    alert = Alert(
        fingerprint="f1",
        status="firing",
        labels=labels,
        annotations=annotations or {},
        starts_at=datetime(2026, 12, 4, 10, 0, tzinfo=UTC),
    )
    return Notification(
        source="alertmanager",
        group_key="{}:{}",
        status="firing",
        common_labels=labels if common else {},
        common_annotations=annotations or {},
        alerts=[alert],
    )


ROUTES: dict[str, Any] = {
    "routes": [
        {
            "name": "db-connection-leak",
            "matchers": ['alertname="DatabaseConnectionLeak"', 'severity=~"warning|critical"'],
            "channel": "#db-alerts",
            "runbook": "db.connections",
            "params": {"idle_minutes": "idle_minutes"},
            "severities": {"critical": "p0", "warning": "p2"},
            "declare": "offer",
            "attach": True,
            "continue": False,
        },
        {
            "name": "services",
            "matchers": ['alertname=~"Service.*"'],
            "channel": "ops",
            "params": {"service": "service"},
            "declare": "auto",
            "attach": False,
        },
        {"name": "everything-db", "matchers": ['alertname=~"Database.*"'], "channel": "never-reached"},
    ],
    "default": {"channel": "alerts", "declare": "never"},
}


def routes() -> AlertRoutes:
    return AlertRoutes(RoutesFile.model_validate(ROUTES))


def test_first_matching_route_decides(catalogue: Catalogue) -> None:
    labels = {
        "alertname": "DatabaseConnectionLeak",
        "severity": "critical",
        "service": "postgres",
        "idle_minutes": "5",
    }
    decision = routes().decide(notification(labels), catalogue)
    assert decision.model_dump() == {
        "route": "db-connection-leak",
        "channel": "db-alerts",
        "runbook_id": "db.connections",
        "params": {"idle_minutes": "5"},
        "severity": "p0",
        "declare": "offer",
        "attach": True,
        "service": "postgres",
        "problems": [],
    }


def test_no_match_takes_the_default(catalogue: Catalogue) -> None:
    decision = routes().decide(
        notification({"alertname": "DatabaseConnectionLeak", "severity": "info"}), catalogue
    )
    assert (decision.route, decision.channel, decision.declare) == ("everything-db", "never-reached", "never")
    decision = routes().decide(notification({"alertname": "Other"}), catalogue)
    assert (decision.route, decision.channel, decision.runbook_id) == ("default", "alerts", None)
    assert decision.problems == []


def test_without_common_labels_the_first_alert_decides(catalogue: Catalogue) -> None:
    labels = {"alertname": "DatabaseConnectionLeak", "severity": "warning"}
    decision = routes().decide(notification(labels, common=False), catalogue)
    assert (decision.route, decision.severity) == ("db-connection-leak", "p2")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("5; DROP TABLE incidents", "`idle_minutes` must be a whole number from 0 to 1440"),
        ("$(reboot)", "`idle_minutes` must be a whole number from 0 to 1440"),
        ("99999", "`idle_minutes` must be from 0 to 1440"),
        ("-1", "`idle_minutes` must be from 0 to 1440"),
    ],
)
def test_invalid_parameter_values_are_dropped_and_named(
    catalogue: Catalogue, value: str, problem: str
) -> None:
    labels = {"alertname": "DatabaseConnectionLeak", "severity": "critical", "idle_minutes": value}
    decision = routes().decide(notification(labels), catalogue)
    assert decision.runbook_id == "db.connections"
    assert decision.params == {}
    assert decision.problems == [f"label idle_minutes dropped: {problem}"]


def test_identifier_parameters_need_the_allow_list(catalogue: Catalogue) -> None:
    runbook = catalogue.get("health.services")
    assert runbook is not None
    allowed = runbook.params[0].allowed  # type: ignore[union-attr]
    ok = routes().decide(
        notification({"alertname": "ServiceDown", "runbook": "health.services", "service": allowed[0]}),
        catalogue,
    )
    assert (ok.route, ok.runbook_id, ok.params, ok.problems) == (
        "services",
        "health.services",
        {"service": allowed[0]},
        [],
    )
    bad = routes().decide(
        notification({"alertname": "ServiceDown", "runbook": "health.services", "service": "nope"}), catalogue
    )
    assert bad.params == {}
    assert bad.problems[0].startswith("label service dropped: `service` must be one of")


@pytest.mark.parametrize(
    ("labels", "annotations", "runbook", "problems"),
    [
        ({"runbook": "cache.stats"}, {}, "cache.stats", []),
        (
            {"runbook": "no.such.runbook"},
            {},
            None,
            ["label runbook: no.such.runbook is not a runbook in the catalogue"],
        ),
        (
            {"runbook": "'; DROP TABLE x"},
            {},
            None,
            ["label runbook: (not a runbook id) is not a runbook in the catalogue"],
        ),
        ({}, {"runbook_url": "https://wiki.example/runbooks/host.disk"}, "host.disk", []),
        ({}, {"runbook_url": "https://wiki.example/runbooks.html#api.errors"}, "api.errors", []),
        ({}, {"runbook_url": "https://wiki.example/runbooks/api.latency.md"}, "api.latency", []),
        (
            {},
            {"runbook_url": "https://wiki.example/runbooks/"},
            None,
            ["annotation runbook_url does not name a runbook in the catalogue"],
        ),
        ({}, {}, None, []),
        # the label wins over the annotation
        ({"runbook": "cache.stats"}, {"runbook_url": "https://w.example/host.disk"}, "cache.stats", []),
    ],
)
def test_runbook_from_labels_and_annotations(
    catalogue: Catalogue,
    labels: dict[str, str],
    annotations: dict[str, str],
    runbook: str | None,
    problems: list[str],
) -> None:
    decision = routes().decide(notification({"alertname": "Other", **labels}, annotations), catalogue)
    assert decision.runbook_id == runbook
    assert decision.problems == problems


def test_route_runbook_wins_over_the_label(catalogue: Catalogue) -> None:
    labels = {"alertname": "DatabaseConnectionLeak", "severity": "critical", "runbook": "cache.stats"}
    assert routes().decide(notification(labels), catalogue).runbook_id == "db.connections"


@pytest.mark.parametrize(
    ("severity", "expected", "problems"),
    [
        ("critical", "p0", 0),
        ("ERROR", "p1", 0),
        ("warning", "p2", 0),
        ("info", "p3", 0),
        ("page-me", None, 1),
    ],
)
def test_default_severity_map(
    catalogue: Catalogue, severity: str, expected: str | None, problems: int
) -> None:
    decision = routes().decide(notification({"alertname": "Other", "severity": severity}), catalogue)
    assert decision.severity == expected
    assert len(decision.problems) == problems


def test_route_severity_map_replaces_the_default(catalogue: Catalogue) -> None:
    labels = {"alertname": "DatabaseConnectionLeak", "severity": "warning"}
    assert routes().decide(notification(labels), catalogue).severity == "p2"
    file = RoutesFile.model_validate(
        {"routes": [{"name": "r", "matchers": ["a=b"], "channel": "c", "severities": {"warning": "p1"}}]}
    )
    decision = AlertRoutes(file).decide(notification({"a": "b", "severity": "critical"}), catalogue)
    assert decision.severity is None
    assert decision.problems == ["label severity is not one the route maps to an incident severity"]


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("checkout", "checkout"),
        ("api-v2.eu_1", "api-v2.eu_1"),
        ("Checkout", None),
        ("a b", None),
        ("x;rm -rf /", None),
        ("", None),
    ],
)
def test_service_label_must_be_a_plain_name(catalogue: Catalogue, service: str, expected: str | None) -> None:
    decision = routes().decide(notification({"alertname": "Other", "service": service}), catalogue)
    assert decision.service == expected
    assert bool(decision.problems) is (expected is None)


# --- the routes file -------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.yml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "routes:\n  - {name: a, matchers: ['x=~\"(\"'], channel: c}\n",
            "routes[0].matchers[0]: invalid regular expression in x=~: missing ), unterminated subpattern",
        ),
        (
            "routes:\n  - {name: a, matchers: ['x=y'], channel: c, continue: true}\n",
            "routes[0].continue: Input should be False",
        ),
        (
            "routes:\n  - {name: a, matchers: ['x=y'], channel: c, runbook: no.such}\n",
            "routes[0]: runbook no.such is not in the catalogue",
        ),
        (
            "routes:\n  - {name: a, matchers: ['x=y'], channel: c, runbook: db.connections,\n"
            "     params: {minutes: m}}\n",
            "routes[0]: runbook db.connections has no parameter minutes",
        ),
        (
            "routes:\n  - {name: a, matchers: [], channel: c}\n",
            "routes[0].matchers: List should have at least 1 item after validation, not 0",
        ),
        (
            "routes:\n  - {name: a, matchers: ['x=y'], channel: 'bad channel'}\n",
            "routes[0].channel: String should match pattern",
        ),
        (
            "routes:\n  - {name: a, matchers: ['x=y'], channel: c, declare: sometimes}\n",
            "routes[0].declare: Input should be 'auto', 'offer' or 'never'",
        ),
        (
            "routes:\n  - {name: a, matchers: ['x=y'], channel: c}\n"
            "  - {name: a, matchers: ['x=z'], channel: c}\n",
            "(file): route names repeated: a",
        ),
        ("default: {channel: c, colour: red}\n", "default.colour: Extra inputs are not permitted"),
        ("routes: [\n", "line 2: invalid YAML"),
    ],
)
def test_bad_routes_files(tmp_path: Path, catalogue: Catalogue, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RoutesError) as refused:
        load_routes(path, catalogue)
    assert refused.value.problems[0].startswith(f"OPSBOT_ALERT_ROUTES: {path}: {problem}"), (
        refused.value.problems
    )


def test_a_bad_routes_file_stops_start_up(tmp_path: Path) -> None:
    path = write(tmp_path, "routes:\n  - {name: a, matchers: ['x=y'], channel: c, runbook: no.such}\n")
    settings = load_settings(OPSBOT_ALERT_ROUTES=str(path), OPSBOT_DATA_DIR=str(tmp_path))
    with pytest.raises(
        ConfigError, match=r"OPSBOT_ALERT_ROUTES: .*routes\.yml: routes\[0\]: runbook no.such"
    ):
        load_config(settings)


def test_start_up_loads_the_routes(tmp_path: Path) -> None:
    path = write(tmp_path, "routes:\n  - {name: a, matchers: ['x=y'], channel: c, runbook: db.connections}\n")
    config = load_config(load_settings(OPSBOT_ALERT_ROUTES=str(path), OPSBOT_DATA_DIR=str(tmp_path)))
    assert [route.name for route in config.alert_routes.file.routes] == ["a"]
    assert load_config(load_settings(OPSBOT_DATA_DIR=str(tmp_path))).alert_routes.file.routes == []


def test_without_a_file_everything_goes_to_alerts(catalogue: Catalogue) -> None:
    decision = load_routes(None).decide(notification({"alertname": "X", "runbook": "cache.stats"}), catalogue)
    assert (decision.route, decision.channel, decision.declare, decision.runbook_id) == (
        "default",
        "alerts",
        "never",
        "cache.stats",
    )


def test_readme_example_loads(tmp_path: Path, catalogue: Catalogue) -> None:
    readme = (REPO / "README.md").read_text()
    start = readme.index("```yaml\nroutes:", readme.index("### Receivers and routes"))
    example = readme[start + len("```yaml\n") : readme.index("```", start + 7)]
    loaded = load_routes(write(tmp_path, example), catalogue)
    assert loaded.file.routes[0].name == "db-connection-leak"


def test_exported_schema_is_current() -> None:
    """deploy/alert-routes.schema.json is what `opsbot alerts schema` prints; regenerate with
    `opsbot alerts schema --out deploy/alert-routes.schema.json`."""
    assert (REPO / "deploy" / "alert-routes.schema.json").read_text() == schema_text()
    assert json.loads(schema_text())["properties"]["routes"]["items"]["$ref"] == "#/$defs/Route"

"""`opsbot alerts test|send|schema`: what a notification would do, a sample sent to a real receiver
over HTTP, and the schema."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import SecretStr
from typer.testing import CliRunner

from bot.alerts.model import Notification
from bot.alerts.receiver import alert_routes
from bot.alerts.samples import alertmanager_notification
from bot.cli import cli
from bot.cli_alerts import schema_text
from bot.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
OPSBOT = str(Path(sys.executable).with_name("opsbot"))

ROUTES = """\
routes:
  - name: db-connection-leak
    matchers: ['alertname="DatabaseConnectionLeak"']
    channel: db-alerts
    runbook: db.connections
    params: {idle_minutes: idle_minutes}
    declare: offer
default: {channel: alerts}
"""


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPSBOT_RUNBOOKS", str(REPO / "runbooks"))
    (tmp_path / "routes.yml").write_text(ROUTES)
    body = alertmanager_notification("db-leak")
    body["commonLabels"] = {**body["commonLabels"], "idle_minutes": "5 OR 1=1"}
    (tmp_path / "leak.json").write_text(json.dumps(body))
    return tmp_path


def test_alerts_test_prints_the_decision(files: Path) -> None:
    result = CliRunner().invoke(cli, ["alerts", "test", str(files / "routes.yml"), str(files / "leak.json")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "notification: firing, 1 alert(s), 1 firing",
        "route:    db-connection-leak",
        "channel:  #db-alerts",
        "runbook:  db.connections",
        "params:   (runbook defaults)",
        "severity: p0",
        "service:  postgres",
        "incident: offer “Declare P0” on the card; "
        "attach to an open incident of service postgres if there is one",
        "problem:  label idle_minutes dropped: `idle_minutes` must be a whole number from 0 to 1440",
    ]


def test_alerts_test_with_a_generic_payload(files: Path) -> None:
    (files / "generic.json").write_text(json.dumps({"group": "g", "alerts": [{"name": "Other"}]}))
    result = CliRunner().invoke(
        cli, ["alerts", "test", str(files / "routes.yml"), str(files / "generic.json"), "--source", "generic"]
    )
    assert result.exit_code == 0, result.output
    assert "route:    default" in result.output
    assert "incident: none" in result.output


@pytest.mark.parametrize(
    ("routes", "payload", "source", "words"),
    [
        ("routes: [", "leak.json", "alertmanager", "OPSBOT_ALERT_ROUTES: "),
        (ROUTES, "missing.json", "alertmanager", "cannot read"),
        (ROUTES, "leak.json", "grafana", "not a grafana notification: version"),
        (ROUTES, "leak.json", "pagerduty", "--source must be one of"),
    ],
)
def test_alerts_test_refuses_bad_input(
    files: Path, routes: str, payload: str, source: str, words: str
) -> None:
    (files / "routes.yml").write_text(routes)
    result = CliRunner().invoke(
        cli, ["alerts", "test", str(files / "routes.yml"), str(files / payload), "--source", source]
    )
    assert result.exit_code == 1
    assert words in result.output


def test_alerts_schema_prints_the_schema(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["alerts", "schema"])
    assert result.exit_code == 0
    assert result.output == schema_text()
    CliRunner().invoke(cli, ["alerts", "schema", "--out", str(tmp_path / "s.json")])
    assert (tmp_path / "s.json").read_text() == schema_text()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[Notification]]]:
    """The real receiver routes on a loopback port, handing notifications to a list."""
    received: list[Notification] = []

    async def record(notification: Notification) -> None:
        received.append(notification)

    app = web.Application()
    app.add_routes(alert_routes({"alertmanager": SecretStr("t0ken")}, Metrics(), record))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}/alerts/alertmanager", received
    await runner.cleanup()


async def opsbot(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        OPSBOT, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def test_alerts_send_delivers_a_sample(receiver: tuple[str, list[Notification]]) -> None:
    url, received = receiver
    code, output = await opsbot("alerts", "send", url, "--token", "t0ken", "--sample", "5xx")
    assert code == 0, output
    assert output.startswith("200 ")
    code, output = await opsbot("alerts", "send", url, "--token", "t0ken", "--sample", "5xx", "--resolve")
    assert code == 0, output
    assert [(n.common_labels["alertname"], n.status) for n in received] == [
        ("APIHighErrorRate", "firing"),
        ("APIHighErrorRate", "resolved"),
    ]


async def test_alerts_send_reports_refusals(receiver: tuple[str, list[Notification]]) -> None:
    url, received = receiver
    code, output = await opsbot("alerts", "send", url, "--token", "wrong")
    assert (code, output.split()[0]) == (1, "401")
    code, output = await opsbot("alerts", "send", url, "--token", "t0ken", "--sample", "nope")
    assert code == 1
    assert "unknown sample" in output
    assert received == []

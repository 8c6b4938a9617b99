"""The alert receivers over real HTTP, on the bot's own web app with a running runtime (real
PostgreSQL, localslack): what each source's valid notification becomes, and the bad-input table —
every refusal answers its status with a short JSON reason and leaves nothing recorded."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp import web
from psycopg import sql
from pydantic import SecretStr

from bot.alerts.model import Notification
from bot.alerts.receiver import alert_routes
from bot.alerts.routes import AlertRoutes, RoutesFile
from bot.alerts.samples import alertmanager_notification
from bot.app import build_web_app
from bot.config import load_settings
from bot.metrics import Metrics
from bot.runtime import Runtime
from localslack import LocalSlack
from tests.conftest import bot_env, running_bot

TOKENS = {"alertmanager": "am-token-123", "generic": "generic-token-456"}  # grafana: none configured


@dataclass
class Recorder:
    """The receive hook: what the alert service would have been handed."""

    received: list[Notification] = field(default_factory=list)

    async def __call__(self, notification: Notification) -> object:
        self.received.append(notification)
        return None


@dataclass
class AlertBot:
    url: str
    runtime: Runtime
    recorder: Recorder
    database_url: str


@pytest.fixture
async def alert_bot(slack: LocalSlack, database_url: str, data_dir: Path) -> AsyncIterator[AlertBot]:
    env = bot_env(
        slack,
        database_url,
        data_dir,
        OPSBOT_ALERT_TOKEN_ALERTMANAGER=TOKENS["alertmanager"],
        OPSBOT_ALERT_TOKEN_GENERIC=TOKENS["generic"],
    )
    runtime = await Runtime.start(load_settings(**env))
    recorder = Recorder()
    runner = web.AppRunner(build_web_app(runtime, None, receive_alert=recorder), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield AlertBot(f"http://{host}:{port}", runtime, recorder, database_url)
    finally:
        await runner.cleanup()
        await runtime.close()


async def nothing_recorded(bot: AlertBot) -> None:
    """Nothing reached the alert service, and no alert table (the alert store's, whatever their
    names: every table called alert*) holds a row."""
    assert bot.recorder.received == []
    async with await psycopg.AsyncConnection.connect(bot.database_url) as conn:
        tables = await conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_name LIKE 'alert%'"
        )
        for (table,) in await tables.fetchall():
            count = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            assert (await count.fetchone()) == (0,), f"{table} has rows"


async def post(
    url: str, body: bytes | str, *, token: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    sent.setdefault("Content-Type", "application/json")
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=sent) as response:
        return response.status, await response.json(content_type=None)


def sample(**changes: Any) -> dict[str, Any]:
    body = alertmanager_notification("db-leak")
    body.update(changes)
    return body


def with_labels(**labels: str) -> str:
    body = sample()
    body["alerts"][0]["labels"] = {**body["alerts"][0]["labels"], **labels}
    body["commonLabels"] = body["alerts"][0]["labels"]  # one alert: its labels are the common ones
    return json.dumps(body)


def with_huge_label() -> str:
    """A 1 MB label value in a body that stays under the 1 MiB limit (only in the alert's labels)."""
    body = sample()
    body["alerts"][0]["labels"] = {**body["alerts"][0]["labels"], "service": "x" * 1_000_000}
    return json.dumps(body)


def metric(bot: AlertBot, source: str, outcome: str) -> float:
    value = bot.runtime.metrics.registry.get_sample_value(
        "opsbot_alert_notifications_total", {"source": source, "outcome": outcome}
    )
    return value or 0.0


async def test_alertmanager_notification_is_handed_to_the_alert_service(alert_bot: AlertBot) -> None:
    status, answer = await post(
        alert_bot.url + "/alerts/alertmanager", json.dumps(sample()), token=TOKENS["alertmanager"]
    )
    assert (status, answer) == (200, {"status": "ok", "alerts": 1})
    [notification] = alert_bot.recorder.received
    assert notification.source == "alertmanager"
    assert notification.group_key == '{}:{alertname="DatabaseConnectionLeak", service="postgres"}'
    assert notification.alerts[0].labels["runbook"] == "db.connections"
    assert metric(alert_bot, "alertmanager", "received") == 1


async def test_generic_notification_is_handed_to_the_alert_service(alert_bot: AlertBot) -> None:
    body = {"group": "checkout-5xx", "alerts": [{"name": "High5xx", "labels": {"service": "api"}}]}
    status, answer = await post(alert_bot.url + "/alerts/generic", json.dumps(body), token=TOKENS["generic"])
    assert (status, answer) == (200, {"status": "ok", "alerts": 1})
    [notification] = alert_bot.recorder.received
    assert (notification.source, notification.group_key) == ("generic", "generic:checkout-5xx")
    assert notification.alerts[0].labels == {"alertname": "High5xx", "service": "api"}


async def test_a_body_over_the_apps_slack_limit_but_under_the_alert_limit_is_read(
    alert_bot: AlertBot,
) -> None:
    """The app refuses Slack bodies over 512 KiB; alert routes have their own 1 MiB limit."""
    padded = json.dumps(sample()) + " " * (700 * 1024)
    status, answer = await post(alert_bot.url + "/alerts/alertmanager", padded, token=TOKENS["alertmanager"])
    assert (status, answer) == (200, {"status": "ok", "alerts": 1})


TEN_MB = b"{" + b" " * (10 * 1024 * 1024) + b"}"

BAD_INPUT = [
    # (case, path, token, body, status, words in the answer)
    ("no token", "alertmanager", None, json.dumps(sample()), 401, "bearer token"),
    ("wrong token", "alertmanager", "am-token-12", json.dumps(sample()), 401, "bearer token"),
    ("another source's token", "alertmanager", TOKENS["generic"], json.dumps(sample()), 401, "bearer token"),
    (
        "source without a token",
        "grafana",
        TOKENS["alertmanager"],
        json.dumps(sample(version="1")),
        401,
        "token",
    ),
    ("source without a token, empty bearer", "grafana", "", json.dumps(sample(version="1")), 401, "token"),
    ("not JSON", "alertmanager", TOKENS["alertmanager"], "receiver=opsbot", 400, "not JSON"),
    ("JSON but not an object", "alertmanager", TOKENS["alertmanager"], "[1, 2]", 400, "object"),
    (
        "wrong version",
        "alertmanager",
        TOKENS["alertmanager"],
        json.dumps(sample(version="3")),
        400,
        "version",
    ),
    ("no alerts", "alertmanager", TOKENS["alertmanager"], json.dumps(sample(alerts=[])), 400, "alerts"),
    ("10 MB body", "alertmanager", TOKENS["alertmanager"], TEN_MB, 413, "body over"),
    ("NUL in a label", "alertmanager", TOKENS["alertmanager"], with_labels(service="api\x00x"), 400, "NUL"),
    (
        "1 MB label",
        "alertmanager",
        TOKENS["alertmanager"],
        with_huge_label(),
        400,
        "longer",
    ),
    (
        "label name with a dash",
        "alertmanager",
        TOKENS["alertmanager"],
        with_labels(**{"a-b": "x"}),
        400,
        "label",
    ),
    (
        "generic without group",
        "generic",
        TOKENS["generic"],
        json.dumps({"alerts": [{"name": "x"}]}),
        400,
        "group",
    ),
]


@pytest.mark.parametrize(
    ("path", "token", "body", "status", "words"),
    [case[1:] for case in BAD_INPUT],
    ids=[case[0] for case in BAD_INPUT],
)
async def test_bad_input_is_refused_and_nothing_recorded(
    alert_bot: AlertBot, path: str, token: str | None, body: bytes | str, status: int, words: str
) -> None:
    answered, answer = await post(f"{alert_bot.url}/alerts/{path}", body, token=token)
    assert answered == status, answer
    assert words in json.dumps(answer)
    assert metric(alert_bot, path, "refused") == 1
    await nothing_recorded(alert_bot)


async def test_a_chunked_10_mb_body_is_refused_without_a_length(alert_bot: AlertBot) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(160):
            yield b" " * 65536

    headers = {"Authorization": f"Bearer {TOKENS['alertmanager']}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(alert_bot.url + "/alerts/alertmanager", data=chunks(), headers=headers) as response,
    ):
        assert response.status == 413
    await nothing_recorded(alert_bot)


HOSTILE = [
    "'; DROP TABLE incidents; --",
    "$(rm -rf /)",
    "`reboot`; echo pwned | sh",
    "../../etc/passwd?x=1&y=http://evil.example/#frag",
    "<!channel> *bold* <https://evil.example|click>",
]


LEAK_ROUTE = RoutesFile.model_validate(
    {
        "routes": [
            {
                "name": "leak",
                "matchers": ['alertname="DatabaseConnectionLeak"'],
                "channel": "db-alerts",
                "runbook": "db.connections",
                "params": {"idle_minutes": "idle_minutes"},
            }
        ]
    }
)


@pytest.mark.parametrize("value", HOSTILE)
async def test_hostile_label_values_arrive_as_inert_text(alert_bot: AlertBot, value: str) -> None:
    """Injection strings are valid label values: accepted as data, unchanged; the routes then drop
    them where a runbook parameter or a service name is expected (the card escapes the rest)."""
    status, _ = await post(
        alert_bot.url + "/alerts/alertmanager",
        with_labels(service=value, idle_minutes=value),
        token=TOKENS["alertmanager"],
    )
    assert status == 200
    [notification] = alert_bot.recorder.received
    assert notification.alerts[0].labels["service"] == value
    decision = AlertRoutes(LEAK_ROUTE).decide(notification, alert_bot.runtime.runbooks)
    assert (decision.route, decision.runbook_id) == ("leak", "db.connections")
    assert decision.params == {}
    assert decision.service is None
    assert len(decision.problems) == 2, decision.problems


async def test_unknown_runbook_label_is_received_and_routed_to_no_runbook(alert_bot: AlertBot) -> None:
    status, _ = await post(
        alert_bot.url + "/alerts/alertmanager",
        with_labels(runbook="no.such.runbook"),
        token=TOKENS["alertmanager"],
    )
    assert status == 200
    [notification] = alert_bot.recorder.received
    decision = AlertRoutes().decide(notification, alert_bot.runtime.runbooks)
    assert decision.runbook_id is None
    assert decision.problems == ["label runbook: no.such.runbook is not a runbook in the catalogue"]


async def test_a_notification_that_cannot_be_recorded_gets_503_so_the_sender_retries() -> None:
    async def broken(notification: Notification) -> object:
        raise RuntimeError("database went away")

    metrics = Metrics()
    app = web.Application()
    app.add_routes(alert_routes({"alertmanager": SecretStr("t")}, metrics, broken))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        status, answer = await post(
            f"http://{host}:{port}/alerts/alertmanager", json.dumps(sample()), token="t"
        )
    finally:
        await runner.cleanup()
    assert (status, answer) == (503, {"error": "could not record the notification; retry"})
    assert "database went away" not in json.dumps(answer)


async def test_the_running_bot_hands_notifications_to_its_alert_service(
    slack: LocalSlack, database_url: str, data_dir: Path
) -> None:
    """BotServer's own wiring (no hook given): the notification reaches AlertService and is stored."""
    routes = data_dir / "routes.yml"
    routes.write_text("default: {channel: incident-response}\n")
    env = {"OPSBOT_ALERT_TOKEN_ALERTMANAGER": TOKENS["alertmanager"], "OPSBOT_ALERT_ROUTES": str(routes)}
    async with running_bot(slack, database_url, data_dir, **env) as server:
        status, answer = await post(
            server.url + "/alerts/alertmanager", json.dumps(sample()), token=TOKENS["alertmanager"]
        )
        assert (status, answer) == (200, {"status": "ok", "alerts": 1}), answer
        status, _ = await post(server.url + "/alerts/alertmanager", json.dumps(sample()), token="wrong")
        assert status == 401
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        tables = await conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_name LIKE 'alert%'"
        )
        names = [name for (name,) in await tables.fetchall()]
        rows = 0
        for name in names:
            count = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name)))
            rows += (await count.fetchone() or (0,))[0]
    assert rows > 0, f"nothing stored in {names}"

"""Secrets never reach Slack, the log, or the bot's store — also when targets fail and echo them.

The bot runs as `opsbot serve` (so its logs go through the production pipeline, at debug level) with
a password in every URL it holds: its own DATABASE_URL and REDIS_URL, a PostgreSQL target reached as
a role with a password (and two that fail: a missing database, a closed port), Redis targets whose
URLs carry a password the server does not expect, HTTP and Prometheus targets with bearer tokens
that answer by echoing the token back, a command target whose environment holds a token the command
prints, and a PagerDuty routing key the stand-in quotes in its refusal. Values reach the targets
file through `${ENV}` references. An incident is declared, every diagnosis runs in its channel, an
action echoing its token is requested and approved, on-call is paged and the review is drafted.
Then everything is scanned for every secret, raw and URL-encoded.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import psycopg
import pytest
import pytest_asyncio
from aiohttp import web

from localslack import LocalSlack
from tests.conftest import free_port
from tests.security.conftest import QUIET_SCHEDULES, secret_free_environment

module_loop = pytest.mark.asyncio(loop_scope="module")

OPSBOT = str(Path(sys.executable).with_name("opsbot"))
RUN = secrets.token_hex(4)


@dataclass(frozen=True)
class Secrets:
    pg_password: str = f"pg-S3cret/{RUN}@colon:pct%plus+"
    bot_db_password: str = f"botdb-S3cret-{RUN}"
    redis_password: str = f"rd-S3cret/{RUN}@x"
    coordination_password: str = f"coord-S3cret-{RUN}"
    api_token: str = f"api-Bearer-Tok3n-{RUN}"
    prometheus_token: str = f"prom-Tok3n-{RUN}"
    env_token: str = f"env-S3cret-Tok3n-{RUN}"
    routing_key: str = f"pd-routing-key-{RUN}"

    def values(self, slack: LocalSlack) -> dict[str, str]:
        found = {name: getattr(self, name) for name in self.__dataclass_fields__}
        found["slack bot token"] = slack.bot_token
        found["slack signing secret"] = slack.signing_secret
        return found


SECRETS = Secrets()

RUNBOOK = """
id: sec.leaks
title: Secret handling
summary: every kind of target, each answering in a way that could carry its secret back
source: {seed: 004_64a8611e63a2df9d.txt, section: "Performance Diagnosis"}
command: {family: sec, subcommand: leaks}
checks:
  - id: pg_ok
    title: PostgreSQL as a role with a password
    probe: {kind: postgres, target: app_db, sql: "SELECT current_user AS who, 1 AS ok"}
    value: ok
  - id: pg_missing_db
    title: PostgreSQL database that does not exist
    probe: {kind: postgres, target: missing_db, sql: "SELECT 1 AS ok"}
    value: ok
  - id: pg_closed_port
    title: PostgreSQL on a closed port
    probe: {kind: postgres, target: closed_db, sql: "SELECT 1 AS ok"}
    value: ok
  - id: redis_password
    title: Redis with a password it does not expect
    probe: {kind: redis, target: cache, command: PING}
  - id: redis_user
    title: Redis with a user it does not know
    probe: {kind: redis, target: cache_user, command: PING}
  - id: api_echo
    title: An API that echoes the bearer token
    probe:
      kind: http
      target: api
      path: /echo
      json_fields: {echoed: echo.authorization, detail: error}
    value: echoed
    show_rows: true
  - id: prom_echo
    title: A Prometheus that quotes the token in its error
    probe: {kind: prometheus, target: prometheus, query: "up"}
  - id: env_token
    title: A command that prints its environment's token
    probe: {kind: command, target: host, argv: [printenv, API_TOKEN]}
    show_rows: true
actions:
  - id: echo_post
    title: Call an admin endpoint that echoes the token
    risk: high
    step: {kind: http, target: api, method: POST, path: /admin/echo, json_body: {reason: check}}
"""

TARGETS = """
targets:
  app_db: {kind: postgres, dsn: "${SEC_PG_DSN}"}
  missing_db: {kind: postgres, dsn: "${SEC_PG_MISSING_DSN}", connect_timeout: 2}
  closed_db: {kind: postgres, dsn: "${SEC_PG_CLOSED_DSN}", connect_timeout: 2}
  cache: {kind: redis, url: "${SEC_REDIS_URL}"}
  cache_user: {kind: redis, url: "${SEC_REDIS_USER_URL}"}
  api: {kind: http, base_url: "${SEC_ECHO_URL}", headers: {Authorization: "Bearer ${SEC_API_TOKEN}"}}
  prometheus:
    kind: prometheus
    base_url: "${SEC_ECHO_URL}"
    headers: {Authorization: "Bearer ${SEC_PROM_TOKEN}"}
  host:
    kind: command
    allowed_programs: [printenv]
    env: {API_TOKEN: "${SEC_ENV_TOKEN}"}
"""


async def echo_app() -> web.Application:
    """A target that tells everyone what credentials it was sent."""

    async def echo(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        return web.json_response(
            {"echo": {"authorization": header, "url": str(request.url)}, "error": f"token {header} rejected"},
            status=500,
        )

    async def admin(request: web.Request) -> web.Response:
        return web.Response(text=f"refused: {request.headers.get('Authorization')}", status=403)

    async def prometheus(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        return web.json_response({"status": "error", "errorType": "bad_data", "error": f"auth {header} bad"})

    async def pagerduty(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(
            {"status": "invalid event", "message": f"routing_key {body.get('routing_key')} unknown"},
            status=400,
        )

    app = web.Application()
    app.router.add_get("/echo", echo)
    app.router.add_post("/admin/echo", admin)
    app.router.add_get("/api/v1/query", prometheus)
    app.router.add_post("/pagerduty", pagerduty)
    return app


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def echo_url() -> AsyncIterator[str]:
    runner = web.AppRunner(await echo_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.fixture(scope="module")
def password_role(pg_admin_url: str, module_app_db_url: str) -> Iterator[str]:
    """A login role with a password, allowed to connect to the application database and no more."""
    role = f"opsbot_sec_{RUN}"
    database = module_app_db_url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                psycopg.sql.Identifier(role), psycopg.sql.Literal(SECRETS.pg_password)
            )
        )
        conn.execute(
            psycopg.sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                psycopg.sql.Identifier(database), psycopg.sql.Identifier(role)
            )
        )
    yield role
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(
                psycopg.sql.Identifier(database), psycopg.sql.Identifier(role)
            )
        )
        conn.execute(psycopg.sql.SQL("DROP ROLE IF EXISTS {}").format(psycopg.sql.Identifier(role)))


def _with_credentials(url: str, user: str, password: str, database: str | None = None) -> str:
    scheme, rest = url.split("://", 1)
    host_part = rest.split("@", 1)[-1]
    host, _, tail = host_part.partition("/")
    if database is not None:
        tail = database
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{host}/{tail}"


@dataclass
class Scenario:
    slack: LocalSlack
    log: str
    stdout: str
    database_url: str
    incident_channel: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scenario(
    module_slack: LocalSlack,
    module_database_url: str,
    module_app_db_url: str,
    redis_url: str,
    password_role: str,
    echo_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Scenario]:
    slack = module_slack
    directory = tmp_path_factory.mktemp("secrets")
    (directory / "runbooks").mkdir()
    (directory / "runbooks" / "leaks.yml").write_text(RUNBOOK)
    (directory / "targets.yml").write_text(TARGETS)
    redis_base = redis_url.rsplit("/", 1)[0]
    env = {
        **secret_free_environment(),
        **QUIET_SCHEDULES,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": _with_credentials(module_database_url, "postgres", SECRETS.bot_db_password),
        "REDIS_URL": f"redis://:{quote(SECRETS.coordination_password, safe='')}@{redis_base.split('://')[1]}/0",
        "OPSBOT_PORT": "0",
        "OPSBOT_DATA_DIR": str(directory / "data"),
        "OPSBOT_RUNBOOKS": str(directory / "runbooks"),
        "OPSBOT_TARGETS": str(directory / "targets.yml"),
        "OPSBOT_LOG_FORMAT": "json",
        "OPSBOT_LOG_LEVEL": "debug",
        "OPSBOT_PAGERDUTY_ROUTING_KEY": SECRETS.routing_key,
        "OPSBOT_PAGERDUTY_URL": f"{echo_url}/pagerduty",
        "SEC_PG_DSN": _with_credentials(module_app_db_url, password_role, SECRETS.pg_password),
        "SEC_PG_MISSING_DSN": _with_credentials(
            module_app_db_url, password_role, SECRETS.pg_password, database=f"missing_{RUN}"
        ),
        "SEC_PG_CLOSED_DSN": f"postgresql://{password_role}:{quote(SECRETS.pg_password, safe='')}"
        f"@127.0.0.1:{free_port()}/x",
        "SEC_REDIS_URL": f"redis://:{quote(SECRETS.redis_password, safe='')}@{redis_base.split('://')[1]}/0",
        "SEC_REDIS_USER_URL": f"redis://opsbot:{quote(SECRETS.redis_password, safe='')}"
        f"@{redis_base.split('://')[1]}/0",
        "SEC_ECHO_URL": echo_url,
        "SEC_API_TOKEN": SECRETS.api_token,
        "SEC_PROM_TOKEN": SECRETS.prometheus_token,
        "SEC_ENV_TOKEN": SECRETS.env_token,
    }
    log_path = directory / "bot.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [OPSBOT, "serve"], env=env, stdout=subprocess.PIPE, stderr=log_file, text=True
        )
        try:
            assert proc.stdout is not None
            first = await asyncio.to_thread(proc.stdout.readline)
            match = re.search(r"(http://127\.0\.0\.1:\d+)", first)
            assert match, first + log_path.read_text()[-2000:]
            slack.request_url = match.group(1) + "/slack/events"
            channel = await run_scenario(slack)
        finally:
            proc.terminate()
            stdout, _ = await asyncio.to_thread(proc.communicate, timeout=30)
    yield Scenario(slack, log_path.read_text(), first + (stdout or ""), module_database_url, channel)


async def run_scenario(slack: LocalSlack) -> str:
    await slack.slash("alice", "incident-response", "/incident declare p2 secrets scenario")
    channel = await slack.wait_for(
        lambda: next((c for c in slack.state.channels.values() if c.name.endswith("secrets-scenario")), None),
        timeout=20,
    )
    for user in ("alice", "bob", "carol"):
        if slack.user(user).id not in channel.members:
            channel.members.append(slack.user(user).id)

    def cards() -> list[Any]:
        return [m for m in slack.messages(channel.id) if "Secret handling" in json.dumps(m.blocks)]

    await slack.slash("alice", channel.id, "/sec leaks")
    card = (await slack.wait_for(cards, timeout=30))[-1]
    await slack.slash("alice", channel.id, "/runbook run sec.leaks:echo_post")
    modal = await slack.wait_for(lambda: slack.current_view("alice"), timeout=15)
    await slack.submit_view("alice", modal, {"reason": "check what the endpoint answers"})
    approval = (
        await slack.wait_for(
            lambda: [m for m in slack.messages(channel.id) if "Approval needed" in json.dumps(m.blocks)],
            timeout=15,
        )
    )[-1]
    approve = next(
        e["action_id"]
        for b in approval.blocks or []
        for e in b.get("elements", [])
        if e.get("action_id") == "approval_approve"
    )
    await slack.click("bob", approval, approve)
    await slack.wait_for(lambda: len(slack.thread(channel.id, approval.ts)) >= 1, timeout=30)

    incident_card = next(m for m in slack.messages(channel.id) if "incident_page" in json.dumps(m.blocks))
    await slack.click("carol", incident_card, "incident_page")
    await slack.wait_for(
        lambda: [e for e in slack.ephemerals("carol") if "page did not go out" in e.text], timeout=15
    )
    await slack.slash("alice", channel.id, "/incident postmortem")
    await slack.wait_for(lambda: slack.files_in(channel.id), timeout=30)
    assert card is not None
    return str(channel.id)


def forms(secret: str) -> set[str]:
    """The secret as it might be written: raw, URL-encoded, form-encoded, JSON-escaped."""
    return {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), json.dumps(secret)[1:-1]}


def leaks(surface: str, text: str, slack: LocalSlack) -> list[str]:
    found = []
    for name, secret in SECRETS.values(slack).items():
        for form in forms(secret):
            if form in text:
                at = text.index(form)
                found.append(f"{surface}: {name} as {form!r} in …{text[max(0, at - 80) : at + 40]!r}")
    return found


def slack_surfaces(slack: LocalSlack) -> dict[str, str]:
    state = slack.state
    surfaces: dict[str, str] = {}
    for channel in state.channels.values():
        for message in channel.messages.values():
            surfaces[f"message {channel.name}/{message.ts}"] = json.dumps(
                [message.text, message.blocks, message.attachments], ensure_ascii=False
            )
    for n, ephemeral in enumerate(state.ephemerals):
        surfaces[f"ephemeral {n}"] = json.dumps([ephemeral.text, ephemeral.blocks], ensure_ascii=False)
    for file in state.files.values():
        surfaces[f"file {file.id}"] = file.content.decode("utf-8", "replace") + json.dumps(
            [file.title, file.name], ensure_ascii=False
        )
    for view in state.views.values():
        surfaces[f"view {view.id}"] = json.dumps(view.to_api(), ensure_ascii=False)
    for n, call in enumerate(slack.recorder.api_calls):
        # The token a call authenticates with is the one place the bot token belongs.
        surfaces[f"api call {n} {call.method}"] = json.dumps(call.args, ensure_ascii=False, default=str)
    return surfaces


async def store_surfaces(database_url: str) -> dict[str, str]:
    surfaces = {}
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        for table in (
            "audit_events",
            "diagnosis_runs",
            "approval_requests",
            "incidents",
            "timeline_events",
            "postmortems",
        ):
            rows = await (await conn.execute(f"SELECT to_jsonb(t)::text FROM {table} t")).fetchall()  # noqa: S608
            for n, row in enumerate(rows):
                surfaces[f"{table} row {n}"] = str(row[0])
    return surfaces


@module_loop
async def test_the_scenario_reached_every_failure_it_meant_to(scenario: Scenario) -> None:
    """Without this, a scenario that silently skipped a step would make the scan vacuous."""
    texts = "\n".join(slack_surfaces(scenario.slack).values())
    assert "does not exist" in texts  # the missing database
    assert "Connection refused" in texts or "cannot connect" in texts  # the closed port
    assert "password" in texts  # the Redis servers refused the passwords
    # The API echoed its token: the card shows the echo, masked ("Bearer ***" or "***").
    assert re.search(r"echoes the bearer token\* — \*(Bearer )?\*\*\*\*", texts)
    assert "bad_data" in texts  # Prometheus quoted the token
    assert "API_TOKEN" not in texts or "***" in texts
    assert "page did not go out" in texts
    assert any(name.startswith("file ") for name in slack_surfaces(scenario.slack))
    assert "***" in texts, "the echoed secrets were there to be redacted"
    assert '"event": "probe_finished"' in scenario.log or '"probe_finished"' in scenario.log


@module_loop
async def test_no_secret_reaches_slack(scenario: Scenario) -> None:
    found = [
        leak
        for surface, text in slack_surfaces(scenario.slack).items()
        for leak in leaks(surface, text, scenario.slack)
    ]
    assert found == []


@module_loop
async def test_no_secret_reaches_the_log(scenario: Scenario) -> None:
    assert scenario.log.count("\n") > 50, "the bot logged at debug level"
    found = leaks("log", scenario.log, scenario.slack) + leaks("stdout", scenario.stdout, scenario.slack)
    assert found == []


@module_loop
async def test_no_secret_reaches_the_audit_log_or_the_store(scenario: Scenario) -> None:
    surfaces = await store_surfaces(scenario.database_url)
    assert any(name.startswith("audit_events") for name in surfaces)
    found = [leak for surface, text in surfaces.items() for leak in leaks(surface, text, scenario.slack)]
    assert found == []


LOG_EXCEPTIONS = """
import logging, sys
from bot.logs import Redactor, configure_logging, get_logger, redact_logs
configure_logging("info", sys.argv[1])
redact_logs(Redactor([sys.argv[2]]))
try:
    raise RuntimeError(f"answered with {sys.argv[2]} for postgresql://opsbot:{sys.argv[2]}@db/app")
except RuntimeError as exc:
    get_logger("opsbot.test").error("listener_failed", exc_info=exc)
    logging.getLogger("aiohttp.server").exception("Error handling request")
"""


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_an_exception_that_quotes_a_secret_is_masked_in_the_log(fmt: str) -> None:
    secret = SECRETS.env_token
    done = subprocess.run(
        [sys.executable, "-c", LOG_EXCEPTIONS, fmt, secret],
        capture_output=True,
        text=True,
        timeout=30,
        env=secret_free_environment(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("RuntimeError: answered with ***") == 2, done.stderr
    assert secret not in done.stderr

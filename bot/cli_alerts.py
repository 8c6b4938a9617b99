"""`opsbot alerts …`: try a routes file on a notification, send a sample notification, export the schema."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, get_args

import aiohttp
import typer

from bot.alerts.model import Notification, RouteDecision, Source
from bot.alerts.payloads import PayloadError, parse_notification
from bot.alerts.routes import AlertRoutes, RoutesError, load_routes, routes_schema
from bot.alerts.samples import SAMPLES, alertmanager_notification
from bot.config import load_settings
from bot.logs import configure_logging
from bot.runbooks.catalogue import Catalogue, CatalogueError, load_catalogue

alerts_cli = typer.Typer(
    help="Alert routes and receivers: test, send a sample, schema.", no_args_is_help=True
)

SOURCES = ", ".join(get_args(Source))


def _fail(lines: list[str]) -> typer.Exit:
    for line in lines:
        typer.echo(f"✗ {line}", err=True)
    return typer.Exit(1)


def _catalogue() -> Catalogue:
    settings = load_settings()
    configure_logging("warning", settings.log_format)
    try:
        return load_catalogue(settings.runbooks_dir)
    except CatalogueError as exc:
        raise _fail(exc.problems) from None


def _notification(source: str, payload: Path) -> Notification:
    if source not in get_args(Source):
        raise _fail([f"--source must be one of {SOURCES}"])
    try:
        body = payload.read_bytes()
    except OSError as exc:
        raise _fail([f"{payload}: cannot read: {exc.strerror or exc}"]) from None
    try:
        return parse_notification(source, body)  # type: ignore[arg-type]
    except PayloadError as exc:
        raise _fail([f"{payload}: not a {source} notification: {exc}"]) from None


def describe(notification: Notification, decision: RouteDecision) -> list[str]:
    """What opsbot would do with the notification, one line per decision."""
    params = ", ".join(f"{name}={value}" for name, value in decision.params.items()) or "(runbook defaults)"
    firing = len(notification.firing)
    return [
        f"notification: {notification.status}, {len(notification.alerts)} alert(s), {firing} firing",
        f"route:    {decision.route}",
        f"channel:  #{decision.channel}",
        f"runbook:  {decision.runbook_id or '(none)'}",
        f"params:   {params if decision.runbook_id else '-'}",
        f"severity: {decision.severity or '(none)'}",
        f"service:  {decision.service or '(none)'}",
        f"incident: {_incident_action(decision)}",
        *(f"problem:  {problem}" for problem in decision.problems),
    ]


def _incident_action(decision: RouteDecision) -> str:
    severity = (decision.severity or "p2").upper()
    action = {
        "auto": f"declare a {severity} incident",
        "offer": f"offer “Declare {severity}” on the card",
        "never": "none",
    }[decision.declare]
    if decision.attach and decision.service:
        action += f"; attach to an open incident of service {decision.service} if there is one"
    return action


@alerts_cli.command("test")
def try_routes(
    routes: Annotated[Path, typer.Argument(help="Routes file (what OPSBOT_ALERT_ROUTES names)")],
    payload: Annotated[Path, typer.Argument(help="A notification body (JSON) as the source sends it")],
    source: Annotated[str, typer.Option(help=f"Who sent it: {SOURCES}")] = "alertmanager",
) -> None:
    """Print what a notification would do: route, channel, runbook, params, severity, incident."""
    catalogue = _catalogue()
    try:
        loaded: AlertRoutes = load_routes(routes, catalogue)
    except RoutesError as exc:
        raise _fail(exc.problems) from None
    notification = _notification(source, payload)
    for line in describe(notification, loaded.decide(notification, catalogue)):
        typer.echo(line)


@alerts_cli.command("send")
def send(
    url: Annotated[str, typer.Argument(help="Receiver URL, e.g. http://127.0.0.1:3000/alerts/alertmanager")],
    token: Annotated[
        str, typer.Option(help="Bearer token of the receiver", envvar="OPSBOT_ALERT_TOKEN_ALERTMANAGER")
    ],
    sample: Annotated[str, typer.Option(help=f"Which alert: {', '.join(SAMPLES)}")] = "db-leak",
    resolve: Annotated[bool, typer.Option(help="Send it resolved instead of firing")] = False,
) -> None:
    """POST a sample Alertmanager (version 4) notification, built from the seeds' alerts."""
    if sample not in SAMPLES:
        raise _fail([f"unknown sample {sample[:40]!r}: one of {', '.join(SAMPLES)}"])
    if not url.startswith(("http://", "https://")):
        raise _fail(["URL must start with http:// or https://"])
    body = alertmanager_notification(sample, resolved=resolve)
    status, answer = asyncio.run(_post(url, token, body))
    typer.echo(f"{status} {answer}")
    if not 200 <= status < 300:
        raise typer.Exit(1)


async def _post(url: str, token: str, body: dict[str, object]) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "opsbot-alerts-send"}
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, json=body, headers=headers) as response,
        ):
            return response.status, (await response.text())[:500]
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _fail([f"could not reach {url}: {type(exc).__name__}: {exc}"]) from None


@alerts_cli.command("schema")
def schema(
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout")] = None,
) -> None:
    """JSON Schema of the routes file (OPSBOT_ALERT_ROUTES), for editors."""
    text = schema_text()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)


def schema_text() -> str:
    return json.dumps(routes_schema(), indent=2, ensure_ascii=False) + "\n"

"""The HTTP front door for alerts: `POST /alerts/alertmanager`, `/alerts/grafana` and `/alerts/generic`.

Each source has its own bearer token (`Authorization: Bearer …`, what Alertmanager's
`http_config.authorization` sends); a source without a configured token refuses everything. The
order of checks keeps refusals cheap: the token first (nothing read), then the declared size, then
the body read up to `MAX_ALERT_BODY` and parsed by the source's payload model. Only a valid
notification reaches the hook (`AlertService.receive`); whatever is refused leaves nothing behind.

| answer | when |
|---|---|
| 200 `{"status": "ok", "alerts": N}` | recorded |
| 401 | token missing, wrong, another source's, or none configured for this source |
| 413 | body over 1 MiB (a declared Content-Length over it is refused before reading) |
| 400 `{"error": …, "problem": …}` | not JSON, wrong `version`, schema violation, hostile values |
| 503 | the notification could not be recorded (senders retry on 5xx) |
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import get_args

from aiohttp import web
from pydantic import SecretStr

from bot.alerts.model import Notification, Source
from bot.alerts.payloads import PayloadError, parse_notification
from bot.config import Settings
from bot.logs import get_logger
from bot.metrics import Metrics

MAX_ALERT_BODY = 1024 * 1024
SOURCES: tuple[Source, ...] = get_args(Source)

AlertHook = Callable[[Notification], Awaitable[object]]

log = get_logger(__name__)


def tokens_of(settings: Settings) -> dict[Source, SecretStr | None]:
    """Each source's bearer token from OPSBOT_ALERT_TOKEN_ALERTMANAGER / _GRAFANA / _GENERIC."""
    return {
        "alertmanager": settings.alert_token_alertmanager,
        "grafana": settings.alert_token_grafana,
        "generic": settings.alert_token_generic,
    }


def authorized(header: str | None, token: SecretStr | None) -> bool:
    """`Bearer <token>` in constant time; no token configured means nobody is authorized."""
    if token is None or not token.get_secret_value() or header is None:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    expected = token.get_secret_value().encode()
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), expected)


def alert_routes(
    tokens: Mapping[Source, SecretStr | None], metrics: Metrics, receive: AlertHook
) -> list[web.RouteDef]:
    """One POST route per source; a valid notification is handed to `receive` (`AlertService.receive`)."""
    return [
        web.post(f"/alerts/{source}", _receiver(source, tokens.get(source), metrics, receive))
        for source in SOURCES
    ]


def _receiver(
    source: Source, token: SecretStr | None, metrics: Metrics, receive: AlertHook
) -> Callable[[web.Request], Awaitable[web.Response]]:
    counted = metrics.alert_notifications

    def refuse(status: int, error: str, problem: str | None = None) -> web.Response:
        counted.labels(source, "refused").inc()
        body = {"error": error} if problem is None else {"error": error, "problem": problem}
        return web.json_response(body, status=status)

    async def handle(request: web.Request) -> web.Response:
        if not authorized(request.headers.get("Authorization"), token):
            return refuse(401, f"missing or wrong bearer token for {source}")
        if request.content_length is not None and request.content_length > MAX_ALERT_BODY:
            return refuse(413, f"body over {MAX_ALERT_BODY} bytes")
        try:
            # The app's own limit is Slack's; alerts get theirs, and aiohttp stops reading past it.
            body = await request.clone(client_max_size=MAX_ALERT_BODY).read()
        except web.HTTPRequestEntityTooLarge:
            return refuse(413, f"body over {MAX_ALERT_BODY} bytes")
        try:
            notification = parse_notification(source, body)
        except PayloadError as exc:
            return refuse(400, f"invalid {source} notification", str(exc))
        counted.labels(source, "received").inc()
        try:
            await receive(notification)
        except Exception:
            log.exception("alert_notification_not_recorded", source=source)
            return web.json_response({"error": "could not record the notification; retry"}, status=503)
        return web.json_response({"status": "ok", "alerts": len(notification.alerts)})

    return handle

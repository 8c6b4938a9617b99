"""Wires the Slack app: Bolt AsyncApp, our middleware and handlers, and the aiohttp routes.

One aiohttp server serves `/slack/events` (HTTP mode), `/health`, `/ready` and `/metrics`.
In Socket Mode the same AsyncApp is driven by the websocket handler instead of the route.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.alerts.receiver import AlertHook, alert_routes, tokens_of
from bot.commands import CommandCatalogue
from bot.incidents.store import Incident
from bot.metrics import Metrics
from bot.runtime import Runtime
from bot.services.container import Services
from bot.services.incidents import IncidentService
from bot.slack.admission import admission_middleware
from bot.slack.asker import asker_of, log_failure, notice_for, remember, tell
from bot.slack.delivery import dedupe_middleware, delivery_kind, drop_nul_characters, malformed
from bot.slack.priority import person_first_middleware
from handlers import build_catalogue, register_all

# Slack's own payloads are a few kB; anything near this is abuse, refused before parsing.
MAX_BODY_BYTES = 512 * 1024
# Slack sends commands and interactions as forms and events as JSON; Bolt would guess anything else.
SLACK_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "application/json"})

log = structlog.get_logger(__name__)
Next = Callable[[], Awaitable[None]]
Middleware = Callable[[AsyncBoltContext, dict[str, Any], Next], Awaitable[None]]


class OpsbotApp(AsyncApp):
    """AsyncApp that times every dispatch: in both HTTP and Socket Mode that is the ack latency."""

    def __init__(self, *, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        started = time.perf_counter()
        problem = malformed(req.body) if isinstance(req.body, dict) else None
        if problem is not None:
            response = BoltResponse(status=400, body=json.dumps({"error": f"malformed delivery: {problem}"}))
        else:
            if isinstance(req.body, dict):
                drop_nul_characters(req.body)
            response = await super().async_dispatch(req)
        body = req.body if isinstance(req.body, dict) else {}
        kind = delivery_kind(body)
        self.metrics.ack_latency.labels(kind).observe(time.perf_counter() - started)
        self.metrics.requests.labels(kind, _outcome(response.status)).inc()
        return response


def _outcome(status: int) -> str:
    if status < 300:
        return "ok"
    if status in (401, 403):
        return "rejected"
    return "client_error" if status < 500 else "error"


def services_middleware(services: Services, commands: CommandCatalogue) -> Middleware:
    """Bolt global middleware: hands every listener our services, our Web API client (with its
    per-method metrics and the marker check that keeps a timed-out post from landing twice), the
    asker, and the incident of the channel — looked up only if a listener asks, after its ack."""

    async def provide(context: AsyncBoltContext, body: dict[str, Any], next: Next) -> None:
        asker = asker_of(body)
        remember(asker)
        context["client"] = services.client
        context["services"] = services
        context["commands"] = commands
        context["asker"] = asker
        context["incident"] = _channel_incident(services.incidents, asker.channel if asker else None)
        await next()

    return provide


def _channel_incident(
    incidents: IncidentService, channel: str | None
) -> Callable[[], Awaitable[Incident | None]]:
    found: list[Incident | None] = []

    async def lookup() -> Incident | None:
        if not found:
            found.append(await incidents.in_channel(channel))
        return found[0]

    return lookup


def build_bolt_app(runtime: Runtime) -> OpsbotApp:
    """The Bolt app with our middleware and every handler registered."""
    settings = runtime.settings
    app = OpsbotApp(
        metrics=runtime.metrics,
        client=runtime.slack,
        signing_secret=(
            settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
        ),
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )
    app.use(dedupe_middleware(runtime.coordinator, runtime.metrics, settings.dedupe_ttl_seconds))
    app.use(person_first_middleware(runtime.slack.scheduler.person_in))
    commands, services = build_catalogue(runtime.runbooks), runtime.services
    app.use(services_middleware(services, commands))
    app.use(admission_middleware(services.access, services.client, services.tasks, commands))

    @app.error
    async def on_error(
        error: Exception, body: dict[str, Any], response: BoltResponse | None
    ) -> BoltResponse | None:
        """Failures outside our listeners (middleware, Bolt itself): never a 500 to Slack, and the
        person hears what happened — a command as its answer, anything else as an ephemeral."""
        log_failure(error)
        if response is not None and "command" in body:
            answer = json.dumps({"response_type": "ephemeral", "text": notice_for(error)})
            return BoltResponse(status=200, body=answer, headers={"content-type": "application/json"})
        asker = asker_of(body) if isinstance(body, dict) else None
        if asker is not None:
            await tell(runtime.slack, asker, notice_for(error))
        return BoltResponse(status=200, body="") if response is not None else None

    register_all(app, runtime.runbooks)
    return app


def _verifiable(request: web.Request) -> bool:
    """Headers Bolt's signature check can judge without raising: it calls int() on the timestamp
    and compares the signature with hmac.compare_digest, which refuses non-ASCII text."""
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "0")
    signature = request.headers.get("X-Slack-Signature", "")
    return timestamp.isascii() and timestamp.isdigit() and signature.isascii()


def build_web_app(
    runtime: Runtime, bolt: OpsbotApp | None, *, receive_alert: AlertHook | None = None
) -> web.Application:
    """aiohttp routes; `bolt` is None when Slack credentials are missing or Socket Mode is used.
    A valid alert notification goes to the alert service, or to `receive_alert` when given."""
    web_app = web.Application(client_max_size=MAX_BODY_BYTES)

    async def slack_events(request: web.Request) -> web.Response:
        if bolt is None:
            return web.json_response({"error": "slack is not configured for HTTP mode"}, status=503)
        if request.content_type not in SLACK_CONTENT_TYPES:
            return web.json_response({"error": "unsupported content type"}, status=400)
        await request.read()  # a body over MAX_BODY_BYTES is answered 413 here, before any parsing
        try:
            bolt_request = await to_bolt_request(request)
        except Exception:
            # Bolt parses the body and reads fields out of it before the signature is checked, and
            # raises (answering 500) on undecodable text, a non-object JSON or oddly typed fields.
            return web.json_response({"error": "malformed request body"}, status=400)
        if not _verifiable(request):
            bolt.metrics.requests.labels(delivery_kind(bolt_request.body), "rejected").inc()
            return web.json_response({"error": "invalid request"}, status=401)
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(_: web.Request) -> web.Response:
        ok, checks = await runtime.ready()
        return web.json_response({"ready": ok, **checks}, status=200 if ok else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=runtime.metrics.render(), content_type="text/plain", charset="utf-8")

    web_app.router.add_post("/slack/events", slack_events)
    web_app.router.add_get("/health", health)
    web_app.router.add_get("/ready", ready)
    web_app.router.add_get("/metrics", metrics)
    receive = receive_alert if receive_alert is not None else runtime.services.alerts.receive
    web_app.add_routes(alert_routes(tokens_of(runtime.settings), runtime.metrics, receive))
    return web_app

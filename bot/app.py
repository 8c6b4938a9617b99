"""Wires the Slack app: Bolt AsyncApp, our middleware and handlers, and the aiohttp routes.

One aiohttp server serves `/slack/events` (HTTP mode), `/health`, `/ready` and `/metrics`.
In Socket Mode the same AsyncApp is driven by the websocket handler instead of the route.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.delivery import dedupe_middleware, delivery_kind
from bot.metrics import Metrics
from bot.runtime import Runtime
from handlers import build_catalogue, register_all

# Slack's own payloads are a few kB; anything near this is abuse, refused before parsing.
MAX_BODY_BYTES = 512 * 1024

log = structlog.get_logger(__name__)


class OpsbotApp(AsyncApp):
    """AsyncApp that times every dispatch: in both HTTP and Socket Mode that is the ack latency."""

    def __init__(self, *, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        started = time.perf_counter()
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

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("listener_failed", kind=delivery_kind(body), exc_info=error)

    register_all(app, runtime, build_catalogue(runtime.runbooks))
    return app


def build_web_app(runtime: Runtime, bolt: OpsbotApp | None) -> web.Application:
    """aiohttp routes; `bolt` is None when Slack credentials are missing or Socket Mode is used."""
    web_app = web.Application(client_max_size=MAX_BODY_BYTES)

    async def slack_events(request: web.Request) -> web.Response:
        if bolt is None:
            return web.json_response({"error": "slack is not configured for HTTP mode"}, status=503)
        try:
            bolt_request = await to_bolt_request(request)
        except ValueError:  # undecodable JSON or payload field: Bolt would raise and answer 500
            return web.json_response({"error": "malformed request body"}, status=400)
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
    return web_app

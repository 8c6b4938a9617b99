"""HTTP probes against real aiohttp servers: values from the answer, and every way it can fail."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError

from bot.probes import HttpProbe, ProbeRunner
from bot.targets import Targets
from tests.conftest import free_port
from tests.probes.conftest import make_targets

Runners = Callable[[Targets], ProbeRunner]
TOKEN = "adm1n-t0ken-xyz"


def service(seen: list[web.Request]) -> web.Application:
    async def health(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response({"status": "ok", "checks": {"database": "ok", "queue": {"depth": 3}}})

    async def ready(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response({"status": "degraded", "checks": {"database": "down"}}, status=503)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    async def echo(request: web.Request) -> web.Response:
        seen.append(request)
        body = await request.json() if request.can_read_body else None
        return web.json_response({"path": request.path, "query": dict(request.query), "body": body})

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"a" * 200_000 + b"needle")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://127.0.0.1:9/elsewhere")

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/slow", slow)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/big", big)
    app.router.add_get("/moved", moved)
    return app


@pytest.fixture
async def api(
    serve: Callable[[web.Application], Any], runner_for: Runners
) -> tuple[ProbeRunner, list[web.Request]]:
    seen: list[web.Request] = []
    base_url = await serve(service(seen))
    targets = make_targets(
        api={"kind": "http", "base_url": base_url + "/", "headers": {"Authorization": f"Bearer {TOKEN}"}}
    )
    return runner_for(targets), seen


def probe(**fields: object) -> HttpProbe:
    return HttpProbe.model_validate({"target": "api", **fields})


async def test_a_healthy_endpoint_gives_status_and_json_fields(
    api: tuple[ProbeRunner, list[web.Request]],
) -> None:
    runner, seen = api
    spec = probe(
        path="/health",
        json_fields={
            "status": "status",
            "database": "checks.database",
            "depth": "checks.queue.depth",
            "gone": "x.y",
        },
        body_contains='"database"',
    )
    result = await runner.run(spec, {}, run_id="h", timeout_s=2)
    assert result.status == "ok", result.error
    assert result.values["status_code"] == 200
    assert result.values["status_ok"] is True
    assert result.values["status"] == "ok"
    assert result.values["database"] == "ok"
    assert result.values["depth"] == 3
    assert result.values["gone"] is None
    assert result.values["body_contains"] is True
    assert isinstance(result.values["latency_ms"], float)
    assert seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in result.model_dump_json()


async def test_a_503_is_a_probe_that_ran_with_status_ok_false(
    api: tuple[ProbeRunner, list[web.Request]],
) -> None:
    runner, _ = api
    result = await runner.run(
        probe(path="/ready", json_fields={"database": "checks.database"}), {}, run_id="r", timeout_s=2
    )
    assert result.status == "ok"
    assert result.error is None
    assert result.values["status_code"] == 503
    assert result.values["status_ok"] is False
    assert result.values["database"] == "down"
    accepted = await runner.run(probe(path="/ready", expect_status=[200, 503]), {}, run_id="r", timeout_s=2)
    assert accepted.values["status_ok"] is True


async def test_parameters_are_query_values_never_path(api: tuple[ProbeRunner, list[web.Request]]) -> None:
    runner, seen = api
    hostile = "../../admin?drop=1#frag &x=y/%2e%2e"
    spec = probe(path="/echo", query={"service": "{service}", "limit": "{limit}", "fixed": "v"})
    result = await runner.run(
        spec.model_copy(update={"json_fields": {"path": "path"}}),
        {"service": hostile, "limit": 7},
        run_id="q",
        timeout_s=2,
    )
    assert result.values["path"] == "/echo"
    assert seen[-1].path == "/echo"
    assert dict(seen[-1].query) == {"service": hostile, "limit": "7", "fixed": "v"}


async def test_post_sends_a_json_body(api: tuple[ProbeRunner, list[web.Request]]) -> None:
    runner, seen = api
    spec = probe(
        method="POST",
        path="/echo",
        json_body={"name": "{name}", "dry_run": True},
        json_fields={"name": "body.name", "dry_run": "body.dry_run"},
    )
    result = await runner.run(spec, {"name": "$(reboot)"}, run_id="p", timeout_s=2)
    assert result.values["status_code"] == 200
    assert result.values["name"] == "$(reboot)"
    assert result.values["dry_run"] is True
    assert seen[-1].method == "POST"
    assert seen[-1].path == "/echo"


async def test_body_is_capped(api: tuple[ProbeRunner, list[web.Request]]) -> None:
    runner, _ = api
    result = await runner.run(
        probe(path="/big", max_body_bytes=1000, body_contains="needle"), {}, run_id="b", timeout_s=2
    )
    assert result.status == "ok"
    assert result.truncated
    assert result.values["body_bytes"] == 1000
    assert result.values["body_contains"] is False
    head = await runner.run(probe(method="HEAD", path="/health"), {}, run_id="b", timeout_s=2)
    assert head.values["status_code"] == 200
    assert head.values["body_bytes"] == 0


async def test_redirects_are_not_followed(api: tuple[ProbeRunner, list[web.Request]]) -> None:
    runner, _ = api
    result = await runner.run(probe(path="/moved"), {}, run_id="m", timeout_s=2)
    assert result.status == "ok"
    assert result.values["status_code"] == 302
    assert result.values["status_ok"] is False


async def test_a_slow_endpoint_times_out(api: tuple[ProbeRunner, list[web.Request]]) -> None:
    runner, _ = api
    started = time.monotonic()
    result = await runner.run(probe(path="/slow"), {}, run_id="s", timeout_s=0.5)
    assert result.status == "timeout"
    assert result.error == "timed out after 0.5s"
    assert time.monotonic() - started < 1.0


async def test_a_server_that_never_answers_costs_the_timeout(silent_port: int, runner_for: Runners) -> None:
    runner = runner_for(make_targets(api={"kind": "http", "base_url": f"http://127.0.0.1:{silent_port}"}))
    started = time.monotonic()
    result = await runner.run(probe(path="/health"), {}, run_id="t", timeout_s=0.7)
    assert result.status == "timeout"
    assert time.monotonic() - started < 0.7 + 0.5


async def test_connection_refused_is_an_error(runner_for: Runners) -> None:
    runner = runner_for(make_targets(api={"kind": "http", "base_url": f"http://127.0.0.1:{free_port()}"}))
    result = await runner.run(probe(path="/health"), {}, run_id="c", timeout_s=2)
    assert result.status == "error"
    assert result.error == "cannot connect: Connection refused"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"path": "/svc/{service}"}, "constant absolute path"),
        ({"path": "/a/../admin"}, "constant absolute path"),
        ({"path": "/health?x=1"}, "constant absolute path"),
        ({"path": "health"}, "constant absolute path"),
        ({"path": "//evil.example/x"}, "constant absolute path"),
        ({"query": {"q": "pre-{p}"}}, "mixes text and a placeholder"),
        ({"method": "DELETE"}, "Input should be 'GET', 'HEAD' or 'POST'"),
        ({"json_body": {"a": 1}}, "json_body is only for POST"),
        ({"json_fields": {"status_code": "x"}}, "cannot name a value"),
        ({"json_fields": {"db": "checks..db"}}, "not a dotted path"),
        ({"expect_status": [700]}, "between 100 and 599"),
    ],
)
def test_bad_specs_are_refused_at_validation(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        probe(**fields)

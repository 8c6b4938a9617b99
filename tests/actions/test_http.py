"""HTTP actions against real aiohttp servers: the call is made once, as written, and judged by status."""

from __future__ import annotations

import time

import pytest
from aiohttp import web

from bot.actions import ActionExecutor
from bot.runbooks.steps import HttpCall
from tests.actions.conftest import Executors, Serve
from tests.probes.conftest import make_targets

TOKEN = "adm1n-t0ken-xyz"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, str], object]] = []

    def app(self) -> web.Application:
        async def record(request: web.Request) -> web.StreamResponse:
            body = await request.json() if request.can_read_body else None
            self.calls.append((request.method, request.path, dict(request.headers), body))
            if request.path == "/admin/broken":
                return web.json_response({"error": f"flag store down (token {TOKEN})"}, status=500)
            if request.path == "/admin/moved":
                raise web.HTTPFound(self.elsewhere)
            if request.path == "/admin/big":
                return web.Response(text="x" * 20_000)
            return web.json_response({"applied": True})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        return app

    elsewhere = ""


@pytest.fixture
async def api(serve: Serve, executor_for: Executors) -> tuple[ActionExecutor, Recorder, Recorder]:
    service, other = Recorder(), Recorder()
    other_url = await serve(other.app())
    service.elsewhere = other_url + "/landing"
    base_url = await serve(service.app())
    executor = executor_for(
        make_targets(
            api={"kind": "http", "base_url": base_url, "headers": {"Authorization": f"Bearer {TOKEN}"}}
        )
    )
    return executor, service, other


def call(path: str, **extra: object) -> HttpCall:
    return HttpCall.model_validate({"target": "api", "path": path, **extra})


async def test_a_post_sends_the_body_and_the_token(
    api: tuple[ActionExecutor, Recorder, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    executor, service, _ = api
    # A proxy in the environment is ignored: this one does not exist.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    reason = 'checkout 500s"; } {"enabled": true'
    step = call("/admin/flags", json_body={"flag": "checkout_v2", "enabled": False, "reason": "{reason}"})
    result = await executor.run(step, {"reason": reason}, run_id="flag", timeout_s=2)
    assert result.status == "succeeded", result.error
    assert result.values == {"status_code": 200}
    assert result.output == '{"applied": true}'
    [(method, path, headers, body)] = service.calls
    assert (method, path) == ("POST", "/admin/flags")
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["User-Agent"].startswith("opsbot/")
    assert body == {"flag": "checkout_v2", "enabled": False, "reason": reason}


async def test_an_unexpected_status_fails_with_the_body(
    api: tuple[ActionExecutor, Recorder, Recorder],
) -> None:
    executor, service, _ = api
    result = await executor.run(call("/admin/broken", method="PUT"), {}, run_id="500", timeout_s=2)
    assert result.status == "failed"
    assert result.values == {"status_code": 500}
    assert result.error == "HTTP 500, expected 200, 201, 202, 204"
    assert "flag store down (token ***)" in result.output
    assert TOKEN not in result.model_dump_json()
    assert len(service.calls) == 1
    accepted = await executor.run(call("/admin/broken", expect_status=[500]), {}, run_id="ok", timeout_s=2)
    assert accepted.status == "succeeded"


async def test_redirects_are_not_followed(api: tuple[ActionExecutor, Recorder, Recorder]) -> None:
    executor, service, other = api
    result = await executor.run(call("/admin/moved"), {}, run_id="r", timeout_s=2)
    assert result.status == "failed"
    assert result.values == {"status_code": 302}
    assert "redirects are not followed" in (result.error or "")
    assert len(service.calls) == 1
    assert other.calls == []


async def test_a_delete_without_body_and_a_capped_output(
    api: tuple[ActionExecutor, Recorder, Recorder],
) -> None:
    executor, service, _ = api
    deleted = await executor.run(call("/admin/sessions", method="DELETE"), {}, run_id="d", timeout_s=2)
    assert deleted.status == "succeeded"
    assert service.calls[-1][0] == "DELETE"
    assert service.calls[-1][3] is None
    big = await executor.run(call("/admin/big"), {}, run_id="b", timeout_s=2)
    assert big.status == "succeeded"
    assert big.truncated
    assert big.output == "x" * 4096


async def test_a_silent_server_times_out(executor_for: Executors, silent_port: int) -> None:
    executor = executor_for(make_targets(api={"kind": "http", "base_url": f"http://127.0.0.1:{silent_port}"}))
    started = time.monotonic()
    result = await executor.run(call("/admin/flags"), {}, run_id="t", timeout_s=1)
    assert result.status == "timeout"
    assert result.error == "timed out after 1s; it may or may not have taken effect"
    assert time.monotonic() - started < 1.5

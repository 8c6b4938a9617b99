"""Prometheus probes against an emulated query API: templates, escaping, refusal before sending."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.probes import ProbeRunner, PrometheusProbe
from bot.probes.base import ProbeFailed
from bot.targets import Targets
from tests.probes.conftest import make_targets

Runners = Callable[[Targets], ProbeRunner]
RATE = 'sum by (service) (rate(http_requests_total{service="{service}",status=~"5.."}[5m]))'


def emulator(received: list[str]) -> web.Application:
    async def query(request: web.Request) -> web.Response:
        text = request.query.get("query", "")
        received.append(text)
        if text.startswith("bad("):
            return web.json_response(
                {"status": "error", "errorType": "bad_data", "error": 'parse error: unexpected "("'},
                status=400,
            )
        if text.startswith("scalar("):
            return web.json_response(
                {"status": "success", "data": {"resultType": "scalar", "result": [1.7e9, "4.5"]}}
            )
        if "http_requests_total" in text:
            result = [
                {"metric": {"service": "checkout", "instance": "a:9100"}, "value": [1.7e9, "0.25"]},
                {"metric": {"service": "checkout", "instance": "b:9100"}, "value": [1.7e9, "NaN"]},
            ]
            return web.json_response(
                {"status": "success", "data": {"resultType": "vector", "result": result}}
            )
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": []}})

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    return app


@pytest.fixture
async def prom(serve: Callable[[web.Application], Any], runner_for: Runners) -> tuple[ProbeRunner, list[str]]:
    received: list[str] = []
    base_url = await serve(emulator(received))
    return runner_for(make_targets(prometheus={"kind": "prometheus", "base_url": base_url})), received


def probe(query: str, **extra: object) -> PrometheusProbe:
    return PrometheusProbe.model_validate({"target": "prometheus", "query": query, **extra})


async def test_a_vector_answer_gives_value_series_and_rows(prom: tuple[ProbeRunner, list[str]]) -> None:
    runner, received = prom
    spec = probe(RATE)
    assert spec.param_names() == {"service"}
    result = await runner.run(spec, {"service": "checkout"}, run_id="v", timeout_s=2)
    assert result.status == "ok", result.error
    assert received == [RATE.replace("{service}", "checkout")]
    assert result.values["value"] == 0.25
    assert result.values["series"] == 2
    assert result.columns == ["series", "value"]
    assert result.rows == [
        ['{instance="a:9100",service="checkout"}', 0.25],
        ['{instance="b:9100",service="checkout"}', None],
    ]
    capped = await runner.run(probe(RATE, max_rows=1), {"service": "checkout"}, run_id="v", timeout_s=2)
    assert len(capped.rows) == 1
    assert capped.truncated
    assert capped.values["series"] == 2


async def test_scalar_and_empty_answers(prom: tuple[ProbeRunner, list[str]]) -> None:
    runner, _ = prom
    scalar = await runner.run(probe("scalar(up)"), {}, run_id="s", timeout_s=2)
    assert scalar.values["value"] == 4.5
    empty = await runner.run(probe('up{job="{job}"}'), {"job": "api"}, run_id="s", timeout_s=2)
    assert empty.status == "ok"
    assert empty.values["value"] is None
    assert empty.values["series"] == 0


async def test_a_prometheus_error_is_a_probe_error_with_its_message(
    prom: tuple[ProbeRunner, list[str]],
) -> None:
    runner, _ = prom
    result = await runner.run(probe("bad(up"), {}, run_id="e", timeout_s=2)
    assert result.status == "error"
    assert result.error == 'prometheus bad_data: parse error: unexpected "("'


@pytest.mark.parametrize(
    "value", ['x"}) or vector(1', "a b", "", "x" * 129, "checkout\n", "ch\\eckout", "a'b", 3.5, None, True]
)
async def test_a_hostile_label_value_is_refused_before_any_request(
    prom: tuple[ProbeRunner, list[str]], value: object
) -> None:
    runner, received = prom
    result = await runner.run(probe(RATE), {"service": value}, run_id="h", timeout_s=2)
    assert result.status == "error"
    assert result.error == "parameter 'service' is not a valid label value; query not sent"
    assert received == []


async def test_regex_matchers_get_regex_escaped_values(prom: tuple[ProbeRunner, list[str]]) -> None:
    runner, received = prom
    await runner.run(
        probe('up{job=~"{job}", env!~ "{env}"}'), {"job": "api.v1", "env": "dev"}, run_id="r", timeout_s=2
    )
    await runner.run(probe("up{job='{job}'}"), {"job": "api.v1"}, run_id="r", timeout_s=2)
    await runner.run(probe('up{instance="{port}"}'), {"port": 9100}, run_id="r", timeout_s=2)
    assert received == ['up{job=~"api\\\\.v1", env!~ "dev"}', "up{job='api.v1'}", 'up{instance="9100"}']


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("rate(http_requests_total[{window}])", "may only appear inside a double- or single-quoted"),
        ("up{job={job}}", "may only appear inside"),
        ("up{job=`{job}`}", "may only appear inside"),
        ('up{job="{job}}', "unterminated string"),
        ('topk({n}, up{job="x"})', "may only appear inside"),
    ],
)
def test_placeholders_outside_label_values_are_refused(query: str, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        probe(query)


def test_escaped_quotes_do_not_confuse_the_template_parser() -> None:
    spec = probe('label_replace(up, "dst", "\\"{x}\\"", "src", ".*") + up{job="{job}"}')
    assert spec.param_names() == {"x", "job"}
    assert (
        spec.render({"x": "a", "job": "b"})
        == 'label_replace(up, "dst", "\\"a\\"", "src", ".*") + up{job="b"}'
    )


@given(st.text(max_size=40))
def test_any_value_is_refused_or_lands_inside_its_string(value: str) -> None:
    spec = probe('up{job="{job}"} + 0')
    try:
        rendered = spec.render({"job": value})
    except ProbeFailed:
        assert not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", value)
        return
    assert rendered == f'up{{job="{value}"}} + 0'

"""Prometheus probes: an instant query built from a template whose holes are label values.

A template such as `rate(http_requests_total{service="{service}",status=~"5.."}[5m])` may hold
`{name}` placeholders only inside quoted strings. A substituted value must look like a label
value (`^[A-Za-z0-9_.:-]{1,128}$`) and is escaped for a PromQL string anyway (and for a regex when
it sits in a `=~`/`!~` matcher); anything else is refused before a request is made. The query
then travels as a URL query value, encoded by aiohttp.

An empty vector (the metric or label combination does not exist) is an answer, not an error: the
values say `value: None, series: 0` and carry the `query` that was sent, so a threshold check can
report "no series for `<query>`" and stay unknown instead of looking fine.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal, Self

import aiohttp
from pydantic import Field, PrivateAttr, model_validator

from bot.probes.base import PARAM_NAME, Call, Findings, ProbeFailed, SpecBase, first_line
from bot.probes.http import client_error_reason, read_capped, target_headers
from bot.probes.result import Scalar
from bot.targets import PrometheusTarget

LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_PLACEHOLDER = re.compile(rf"\{{({PARAM_NAME})\}}")
_REGEX_MATCHER = re.compile(r"[=!]~\s*$")
_MAX_RESPONSE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class _Hole:
    name: str
    quote: str
    regex: bool


class PrometheusProbe(SpecBase):
    """An instant query (`/api/v1/query`) from a template with `{param}` label values."""

    kind: Literal["prometheus"] = "prometheus"
    query: str = Field(min_length=1, max_length=10_000)
    max_rows: int = Field(100, ge=1, le=10_000)

    _parts: list[str | _Hole] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _parse_template(self) -> Self:
        self._parts = _parse(self.query)
        return self

    def param_names(self) -> frozenset[str]:
        return frozenset(part.name for part in self._parts if isinstance(part, _Hole))

    def render(self, params: dict[str, Any]) -> str:
        """The query with each placeholder replaced by its validated, escaped value."""
        rendered: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                rendered.append(part)
                continue
            value = params[part.name]
            text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
            if not LABEL_VALUE.fullmatch(text):
                raise ProbeFailed(f"parameter {part.name!r} is not a valid label value; query not sent")
            rendered.append(_escape(text, part.quote, regex=part.regex))
        return "".join(rendered)


def _parse(template: str) -> list[str | _Hole]:
    """Split a template into literal text and holes; refuse holes outside quoted strings."""
    parts: list[str | _Hole] = []
    literal: list[str] = []
    quote: str | None = None
    regex = False
    i = 0
    while i < len(template):
        char = template[i]
        match = _PLACEHOLDER.match(template, i)
        if match and quote in ('"', "'"):
            parts.append("".join(literal))
            literal = []
            parts.append(_Hole(match.group(1), quote, regex))
            i = match.end()
            continue
        if match:
            raise ValueError(
                f"query: placeholder {match.group(0)} may only appear inside a double- or"
                " single-quoted label value"
            )
        literal.append(char)
        if quote is None and char in "\"'`":
            quote = char
            regex = bool(_REGEX_MATCHER.search("".join(literal[:-1])))
        elif quote is not None and char == "\\" and quote != "`" and i + 1 < len(template):
            literal.append(template[i + 1])
            i += 1
        elif char == quote:
            quote = None
        i += 1
    if quote is not None:
        raise ValueError("query: unterminated string")
    parts.append("".join(literal))
    return parts


def _escape(value: str, quote: str, *, regex: bool) -> str:
    if regex:
        value = re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", value)
    return value.replace("\\", "\\\\").replace(quote, "\\" + quote)


async def run_prometheus(
    spec: PrometheusProbe, target: PrometheusTarget, session: aiohttp.ClientSession, call: Call
) -> Findings:
    query = spec.render(dict(call.params))
    try:
        async with session.get(
            f"{target.base_url}/api/v1/query",
            params={"query": query},
            headers=target_headers(target),
            ssl=target.verify_tls,
            allow_redirects=False,
        ) as response:
            status = response.status
            content, too_big = await read_capped(response, _MAX_RESPONSE_BYTES)
    except aiohttp.ClientError as exc:
        raise ProbeFailed(client_error_reason(exc)) from None
    if too_big:
        raise ProbeFailed(f"response larger than {_MAX_RESPONSE_BYTES // (1024 * 1024)} MiB")
    try:
        document = json.loads(content)
    except ValueError:
        raise ProbeFailed(f"HTTP {status}: not a Prometheus API answer") from None
    if not isinstance(document, dict) or document.get("status") != "success":
        error = document.get("error") if isinstance(document, dict) else None
        kind = document.get("errorType") if isinstance(document, dict) else None
        detail = first_line(str(error)) if error else f"HTTP {status}"
        raise ProbeFailed(f"prometheus {kind}: {detail}" if kind else f"prometheus: {detail}")
    return _findings(document.get("data") or {}, spec.max_rows, query)


def _findings(data: dict[str, Any], max_rows: int, query: str) -> Findings:
    result_type, result = data.get("resultType"), data.get("result")
    if result_type in ("scalar", "string") and isinstance(result, list) and len(result) == 2:
        value = _sample(result[1]) if result_type == "scalar" else str(result[1])
        return Findings(values={"value": value, "query": query}, columns=["value"], rows=[[value]])
    if result_type not in ("vector", "matrix") or not isinstance(result, list):
        raise ProbeFailed(f"unexpected result type {result_type!r}")
    rows: list[list[Any]] = []
    for series in result:
        # A range selector answers a matrix; its latest sample is the one that matters here.
        sample = series.get("value") or (series.get("values") or [[None, None]])[-1]
        rows.append([_labels(series.get("metric") or {}), _sample(sample[1])])
    values: dict[str, Scalar] = {"value": rows[0][1] if rows else None, "series": len(rows), "query": query}
    return Findings(
        values=values, columns=["series", "value"], rows=rows[:max_rows], truncated=len(rows) > max_rows
    )


def _sample(raw: Any) -> float | None:
    try:
        number = float(raw)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _labels(metric: dict[str, Any]) -> str:
    name = metric.get("__name__", "")
    labels = ",".join(f'{key}="{value}"' for key, value in sorted(metric.items()) if key != "__name__")
    return f"{name}{{{labels}}}"

"""HTTP probes: one request to a constant path of a target, with the answer turned into values.

The path is fixed in the runbook; parameters can only be URL query values (or top-level JSON body
values for POST), which aiohttp encodes. A 503 is a probe that *ran*: status "ok" with
`status_ok = False`, and thresholds decide that it is red. Redirects are not followed, so the
target's headers (often a bearer token) are never sent to another host.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, Self

import aiohttp
from pydantic import Field, field_validator, model_validator
from yarl import URL

from bot import __version__
from bot.probes.base import (
    BindValue,
    Call,
    Findings,
    ProbeFailed,
    SpecBase,
    check_literal_or_ref,
    first_line,
    os_reason,
    refs_in,
)
from bot.probes.result import Scalar, scalar
from bot.targets import HttpTarget, PrometheusTarget

_PATH = re.compile(r"^/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$")
_FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_RESERVED = frozenset({"status_code", "status_ok", "latency_ms", "body_bytes", "body_contains"})


class HttpProbe(SpecBase):
    """A request to `target.base_url + path`; query and JSON body values may be `{param}`s."""

    kind: Literal["http"] = "http"
    method: Literal["GET", "HEAD", "POST"] = "GET"
    path: str = "/"
    query: dict[str, BindValue] = Field(default_factory=dict)
    json_body: dict[str, BindValue] | None = None
    expect_status: list[int] = Field(default_factory=lambda: [200], min_length=1)
    json_fields: dict[str, str] = Field(default_factory=dict)
    body_contains: str | None = Field(None, min_length=1, max_length=1000)
    max_body_bytes: int = Field(65_536, ge=1, le=10 * 1024 * 1024)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not _PATH.fullmatch(value) or "//" in value or "/../" in f"{value}/" or "/./" in f"{value}/":
            raise ValueError("must be a constant absolute path (no placeholders, query, '//', '..' or '.')")
        return value

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        if any(not 100 <= status <= 599 for status in value):
            raise ValueError("HTTP statuses are between 100 and 599")
        return value

    @field_validator("json_fields")
    @classmethod
    def _json_fields(cls, value: dict[str, str]) -> dict[str, str]:
        for name, path in value.items():
            if not _FIELD_NAME.fullmatch(name) or name in _RESERVED:
                raise ValueError(
                    f"{name!r} cannot name a value (lowercase identifier, not {sorted(_RESERVED)})"
                )
            if not path or any(not part for part in path.split(".")):
                raise ValueError(f"{name}: {path!r} is not a dotted path like checks.database")
        return value

    @model_validator(mode="after")
    def _bodies_and_refs(self) -> Self:
        if self.json_body is not None and self.method != "POST":
            raise ValueError("json_body is only for POST")
        for name, item in {**self.query, **(self.json_body or {})}.items():
            check_literal_or_ref(item, name)
        return self

    def param_names(self) -> frozenset[str]:
        return refs_in(self.query) | refs_in(self.json_body or {})


async def run_http(
    spec: HttpProbe, target: HttpTarget, session: aiohttp.ClientSession, call: Call
) -> Findings:
    query = {
        key: text for key, raw in spec.query.items() if (text := _query_text(call.resolve(raw))) is not None
    }
    body = {key: call.resolve(raw) for key, raw in spec.json_body.items()} if spec.json_body else None
    try:
        async with session.request(
            spec.method,
            URL(target.base_url + spec.path),
            params=query,
            json=body,
            headers=target_headers(target),
            ssl=target.verify_tls,
            allow_redirects=False,
        ) as response:
            status = response.status
            content, truncated = (b"", False)
            if spec.method != "HEAD":
                content, truncated = await read_capped(response, spec.max_body_bytes)
    except aiohttp.ClientError as exc:
        raise ProbeFailed(client_error_reason(exc)) from None
    values: dict[str, Scalar] = {
        "status_code": status,
        "status_ok": status in spec.expect_status,
        "body_bytes": len(content),
    }
    if spec.body_contains is not None:
        values["body_contains"] = spec.body_contains.encode() in content
    document = _json_document(content) if spec.json_fields and not truncated else None
    for name, path in spec.json_fields.items():
        values[name] = _dig(document, path)
    return Findings(values=values, truncated=truncated)


def client_session() -> aiohttp.ClientSession:
    """The client session for probes and actions: no proxy from the environment, no cookies."""
    return aiohttp.ClientSession(
        # Internal endpoints are reached directly, never through a proxy from the environment.
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": f"opsbot/{__version__}"},
        connector=aiohttp.TCPConnector(limit=32),
    )


def target_headers(target: HttpTarget | PrometheusTarget) -> dict[str, str]:
    return {name: value.get_secret_value() for name, value in target.headers.items()}


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of the body, and whether there was more; never buffers beyond it."""
    body = bytearray()
    while len(body) <= limit:
        chunk = await response.content.read(limit + 1 - len(body))
        if not chunk:
            break
        body += chunk
    return bytes(body[:limit]), len(body) > limit


def client_error_reason(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "TLS certificate verification failed"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect: {os_reason(exc) or first_line(str(exc))}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection without answering"
    return first_line(str(exc)) or type(exc).__name__


def _query_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_document(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


def _dig(document: Any, path: str) -> Scalar:
    """`checks.database` into a JSON document; list items by index (`items.0.name`)."""
    current = document
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return scalar(current)

"""Running probes: the spec union, and the runner that owns per-target connections.

    async with ProbeRunner(targets) as runner:
        result = await runner.run(spec, params, run_id="r-42", timeout_s=5.0)

`run` never raises for anything the target does: a refused connection, a timeout, an SQL error or
a 500 all come back as a `ProbeResult` with a short, redacted `error`. It raises `ProbeSpecError`
only when the spec cannot run here at all (unknown target, wrong kind, program not allowed, a
parameter missing) — `check` finds those up front, so a runbook catalogue can be checked at start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType
from typing import Annotated, Any, Literal, Self

import aiohttp
import psycopg
from pydantic import Field, TypeAdapter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.logs import get_logger, redact_text, redact_value
from bot.probes.base import Call, Findings, ProbeFailed, ProbeSpecError, first_line, os_reason
from bot.probes.command import CommandProbe, run_command
from bot.probes.http import HttpProbe, client_session, run_http
from bot.probes.postgres import PostgresPools, PostgresProbe, run_postgres
from bot.probes.prometheus import PrometheusProbe, run_prometheus
from bot.probes.redis import RedisClients, RedisProbe, run_redis
from bot.probes.result import ProbeResult
from bot.targets import (
    CommandTarget,
    HttpTarget,
    PostgresTarget,
    PrometheusTarget,
    RedisTarget,
    Targets,
    UnknownTarget,
)

log = get_logger(__name__)

ProbeSpec = Annotated[
    PostgresProbe | RedisProbe | HttpProbe | PrometheusProbe | CommandProbe, Field(discriminator="kind")
]
PROBE_SPEC: TypeAdapter[ProbeSpec] = TypeAdapter(ProbeSpec)

# What a target (or the network to it) can do to a probe or an action; anything else is a bug.
TARGET_FAILURES = (OSError, ValueError, psycopg.Error, RedisError, aiohttp.ClientError)


def parse_probe(data: object) -> ProbeSpec:
    """Validate a probe spec from runbook data (raises pydantic's `ValidationError`)."""
    return PROBE_SPEC.validate_python(data)


class ProbeRunner:
    """Runs probes against a targets registry, keeping one pool/client per target until closed."""

    def __init__(self, targets: Targets) -> None:
        self._targets = targets
        self._postgres = PostgresPools()
        self._redis = RedisClients()
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def check(self, spec: ProbeSpec) -> None:
        """Raise `ProbeSpecError` if `spec` cannot run against this registry."""
        try:
            target = self._targets.get(spec.target)
        except UnknownTarget as exc:
            raise ProbeSpecError(str(exc)) from None
        if target.kind != spec.kind:
            raise ProbeSpecError(
                f"a {spec.kind} probe cannot run against {spec.target!r}, a {target.kind} target"
            )
        if (
            isinstance(spec, CommandProbe)
            and isinstance(target, CommandTarget)
            and target.program_path(spec.argv[0]) is None
        ):
            raise ProbeSpecError(f"{spec.argv[0]} is not an allowed program on target {spec.target!r}")

    async def run(
        self, spec: ProbeSpec, params: Mapping[str, Any], *, run_id: str, timeout_s: float
    ) -> ProbeResult:
        if self._closed:
            raise RuntimeError("the probe runner is closed")
        if not timeout_s > 0:
            raise ProbeSpecError(f"timeout must be positive, got {timeout_s}")
        self.check(spec)
        if missing := sorted(spec.param_names() - set(params)):
            raise ProbeSpecError(f"probe needs parameter {missing[0]!r}, which was not given")
        # Every target's secrets, not only this one's: a table or an answer may quote another's.
        secrets = self._targets.secrets()
        loop = asyncio.get_running_loop()
        started = loop.time()
        call = Call(params=params, run_id=run_id, timeout_s=timeout_s, deadline=started + timeout_s)
        findings = Findings()
        status: Literal["ok", "error", "timeout"] = "ok"
        error: str | None = None
        try:
            async with asyncio.timeout_at(call.deadline):
                findings = await self._dispatch(spec, call)
        except ProbeFailed as exc:
            status, error = exc.status, exc.message
        except (TimeoutError, RedisTimeoutError):
            status, error = "timeout", f"timed out after {timeout_s:g}s"
        except TARGET_FAILURES as exc:
            status, error = "error", failure_reason(exc)
        latency_ms = round((loop.time() - started) * 1000.0, 2)
        error = redact_text(error, secrets) if error is not None else None
        findings.values.setdefault("latency_ms", latency_ms)
        result = ProbeResult(
            status=status,
            values=redact_value(findings.values, secrets),
            columns=findings.columns,
            rows=redact_value(findings.rows, secrets),
            truncated=findings.truncated,
            latency_ms=latency_ms,
            error=error,
        )
        # One info line per diagnosis (diagnosis_finished) is enough; each healthy probe is debug.
        report = log.debug if status == "ok" else log.warning
        report(
            "probe_finished",
            run_id=run_id,
            target=spec.target,
            kind=spec.kind,
            status=status,
            latency_ms=latency_ms,
            error=error,
        )
        return result

    async def _dispatch(self, spec: ProbeSpec, call: Call) -> Findings:
        targets = self._targets
        match spec:
            case PostgresProbe():
                target_pg = targets.get_kind(spec.target, PostgresTarget)
                return await run_postgres(spec, target_pg, self._postgres, call)
            case RedisProbe():
                return await run_redis(spec, targets.get_kind(spec.target, RedisTarget), self._redis, call)
            case HttpProbe():
                return await run_http(spec, targets.get_kind(spec.target, HttpTarget), self._http(), call)
            case PrometheusProbe():
                target_prom = targets.get_kind(spec.target, PrometheusTarget)
                return await run_prometheus(spec, target_prom, self._http(), call)
            case CommandProbe():
                return await run_command(spec, targets.get_kind(spec.target, CommandTarget), call)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = client_session()
        return self._session

    async def close(self) -> None:
        """Close every pool, client and session; the runner cannot be used afterwards."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        await self._redis.close()
        await self._postgres.close()


async def run_probe(
    spec: ProbeSpec, targets: Targets, params: Mapping[str, Any], *, run_id: str, timeout_s: float
) -> ProbeResult:
    """Run one probe with connections opened for it and closed afterwards (CLI, one-off use)."""
    async with ProbeRunner(targets) as runner:
        return await runner.run(spec, params, run_id=run_id, timeout_s=timeout_s)


def failure_reason(exc: BaseException) -> str:
    if isinstance(exc, RedisConnectionError | aiohttp.ClientConnectorError):
        return f"cannot connect: {os_reason(exc) or first_line(str(exc))}"
    if isinstance(exc, OSError):
        return os_reason(exc) or type(exc).__name__
    return first_line(str(exc)) or type(exc).__name__

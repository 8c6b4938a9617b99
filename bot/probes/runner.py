"""Running probes: the spec union, and the runner that owns per-target connections.

    async with ProbeRunner(targets) as runner:
        result = await runner.run(spec, params, run_id="r-42", timeout_s=5.0)

`run` never raises for anything the target does: a refused connection, a timeout, an SQL error or
a 500 all come back as a `ProbeResult` with a short, redacted `error`. It raises `ProbeSpecError`
only when the spec cannot run here at all (unknown target, wrong kind, program not allowed, a
parameter missing) — `check` finds those up front, so a runbook catalogue can be checked at start.
Around the call itself, `attempt` keeps the deadline, maps failures, redacts and logs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Annotated, Any, Self

import aiohttp
from pydantic import Field, TypeAdapter

from bot.logs import get_logger
from bot.probes.attempt import Terms, attempt
from bot.probes.base import Call, Findings, ProbeSpecError
from bot.probes.command import CommandProbe, run_command
from bot.probes.http import HttpProbe, client_session, run_http
from bot.probes.postgres import PostgresPools, PostgresProbe, run_postgres
from bot.probes.prometheus import PrometheusProbe, run_prometheus
from bot.probes.redis import RedisClients, RedisProbe, run_redis
from bot.probes.result import ProbeResult, ProbeStatus
from bot.targets import (
    CommandTarget,
    HttpTarget,
    PostgresTarget,
    PrometheusTarget,
    RedisTarget,
    Targets,
    UnknownTarget,
)
from bot.transport import CommandHosts

log = get_logger(__name__)

ProbeSpec = Annotated[
    PostgresProbe | RedisProbe | HttpProbe | PrometheusProbe | CommandProbe, Field(discriminator="kind")
]
PROBE_SPEC: TypeAdapter[ProbeSpec] = TypeAdapter(ProbeSpec)

# One info line per diagnosis (diagnosis_finished) is enough; each healthy probe is debug.
PROBE_TERMS: Terms[ProbeStatus] = Terms(
    ok="ok", error="error", timeout="timeout", event="probe_finished", ok_level=logging.DEBUG, log=log
)


def parse_probe(data: object) -> ProbeSpec:
    """Validate a probe spec from runbook data (raises pydantic's `ValidationError`)."""
    return PROBE_SPEC.validate_python(data)


class ProbeRunner:
    """Runs probes against a targets registry, keeping one pool/client per target until closed."""

    def __init__(self, targets: Targets) -> None:
        self._targets = targets
        self._postgres = PostgresPools()
        self._redis = RedisClients()
        self._commands = CommandHosts()
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
        done = await attempt(
            PROBE_TERMS,
            self._dispatch,
            spec,
            params,
            run_id=run_id,
            timeout_s=timeout_s,
            targets=self._targets,
        )
        findings = done.answer or Findings()
        findings.values.setdefault("latency_ms", done.latency_ms)
        return ProbeResult(
            status=done.status,
            values=findings.values,
            columns=findings.columns,
            rows=findings.rows,
            truncated=findings.truncated,
            latency_ms=done.latency_ms,
            error=done.error,
        )

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
                target_cmd = targets.get_kind(spec.target, CommandTarget)
                return await run_command(spec, target_cmd, self._commands, call)

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
        await self._commands.close()


async def run_probe(
    spec: ProbeSpec, targets: Targets, params: Mapping[str, Any], *, run_id: str, timeout_s: float
) -> ProbeResult:
    """Run one probe with connections opened for it and closed afterwards (CLI, one-off use)."""
    async with ProbeRunner(targets) as runner:
        return await runner.run(spec, params, run_id=run_id, timeout_s=timeout_s)

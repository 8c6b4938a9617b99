"""Redis probes: an allow-list of read commands, with the figures on-call engineers look for.

Only these commands exist here: PING, INFO [section], DBSIZE, SLOWLOG GET [n], CLIENT LIST,
MEMORY STATS and CONFIG GET <pattern>; sections and config patterns are allow-listed too, so a
runbook cannot name anything else and a parameter can at most choose how many slowlog entries.
INFO is turned into derived figures (hit rate, memory use against maxmemory) that thresholds
compare, alongside every raw INFO field.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal, Self

import redis.asyncio as aioredis
from pydantic import Field, field_validator, model_validator
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.logs import redact_text
from bot.probes.base import Call, Findings, ProbeFailed, SpecBase, check_literal_or_ref, param_ref
from bot.probes.result import Scalar, json_safe, scalar
from bot.targets import RedisTarget

RedisCommand = Literal["PING", "INFO", "DBSIZE", "SLOWLOG GET", "CLIENT LIST", "MEMORY STATS", "CONFIG GET"]
InfoSection = Literal[
    "server", "clients", "memory", "persistence", "stats", "replication", "cpu", "keyspace", "all"
]
ConfigPattern = Literal["maxmemory", "maxmemory-policy", "timeout", "maxclients", "save", "appendonly"]

_MB = 1024 * 1024
_SLOWLOG_MAX = 128
_COMMAND_CHARS = 200
_IDLE_CLIENT_S = 300
_CLIENT_COLUMNS = ["id", "addr", "name", "age_s", "idle_s", "db", "cmd", "flags"]
_NOT_A_NAME = re.compile(r"[^a-z0-9_]+")


class RedisProbe(SpecBase):
    """One allow-listed read command. `count` (SLOWLOG GET) may be a `{param}` reference."""

    kind: Literal["redis"] = "redis"
    command: RedisCommand
    section: InfoSection | None = None
    pattern: ConfigPattern | None = None
    count: int | str = Field(10)
    max_rows: int = Field(100, ge=1, le=10_000)

    @field_validator("command", mode="before")
    @classmethod
    def _normalise_command(cls, value: object) -> object:
        return " ".join(value.upper().split()) if isinstance(value, str) else value

    @field_validator("section", "pattern", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("count")
    @classmethod
    def _count(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= _SLOWLOG_MAX:
            raise ValueError(f"must be between 1 and {_SLOWLOG_MAX}")
        if isinstance(value, str) and param_ref(value) is None:
            check_literal_or_ref(value, "count")
            raise ValueError("must be a number or a {param} reference")
        return value

    @model_validator(mode="after")
    def _arguments_fit_command(self) -> Self:
        if self.section is not None and self.command != "INFO":
            raise ValueError("section is only for INFO")
        if (self.pattern is None) != (self.command != "CONFIG GET"):
            raise ValueError("CONFIG GET needs a pattern, and only CONFIG GET takes one")
        if "count" in self.model_fields_set and self.command != "SLOWLOG GET":
            raise ValueError("count is only for SLOWLOG GET")
        return self

    def param_names(self) -> frozenset[str]:
        name = param_ref(self.count)
        return frozenset({name}) if name else frozenset()


class RedisClients:
    """One redis.asyncio client per target, created on first use and closed with the runner."""

    def __init__(self) -> None:
        self._clients: dict[str, aioredis.Redis] = {}

    def client(self, name: str, target: RedisTarget) -> aioredis.Redis:
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = aioredis.from_url(
                target.url.get_secret_value(),
                socket_timeout=30.0,
                socket_connect_timeout=5.0,
                # The probe's own timeout bounds the wait; retrying inside it only hides the cause.
                retry=Retry(NoBackoff(), 0),
                client_name="opsbot",
            )
        return client

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


async def run_redis(spec: RedisProbe, target: RedisTarget, clients: RedisClients, call: Call) -> Findings:
    client = clients.client(spec.target, target)
    match spec.command:
        case "PING":
            return Findings(values={"pong": bool(await client.ping())})
        case "DBSIZE":
            return Findings(values={"keys": int(await client.dbsize())})
        case "INFO":
            info = await (client.info(spec.section) if spec.section else client.info())
            return _info_findings(info, spec.max_rows)
        case "SLOWLOG GET":
            count = call.resolve(spec.count)
            if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= _SLOWLOG_MAX:
                raise ProbeFailed(f"slowlog count must be a number between 1 and {_SLOWLOG_MAX}")
            return _slowlog_findings(await client.slowlog_get(count), target.secrets())
        case "CLIENT LIST":
            return _client_findings(await client.client_list(), spec.max_rows)
        case "MEMORY STATS":
            return _pairs_findings(_flatten(await client.memory_stats()), spec.max_rows)
        case "CONFIG GET":
            assert spec.pattern is not None
            config = await client.config_get(spec.pattern)
            return _pairs_findings({str(key): _number_or_text(value) for key, value in config.items()}, 100)


def _info_findings(info: dict[str, Any], max_rows: int) -> Findings:
    flat = _flatten(info)
    findings = _pairs_findings(flat, max_rows)
    values = findings.values
    hits, misses = info.get("keyspace_hits"), info.get("keyspace_misses")
    if isinstance(hits, int) and isinstance(misses, int):
        lookups = hits + misses
        # No lookups yet means no hit rate, not a 0% one.
        values["hit_rate"] = round(100.0 * hits / lookups, 2) if lookups else None
    used, limit = info.get("used_memory"), info.get("maxmemory")
    if isinstance(used, int):
        values["used_memory_mb"] = round(used / _MB, 2)
    if isinstance(limit, int):
        values["maxmemory_mb"] = round(limit / _MB, 2)
        values["memory_used_pct"] = (
            round(100.0 * used / limit, 2) if limit and isinstance(used, int) else None
        )
    version = str(info.get("redis_version", ""))
    if (major := version.split(".", 1)[0]).isdigit():
        values["redis_major"] = int(major)  # "7.2.4" → 7, so a rule can ask for Redis 7 or later
    if "instantaneous_ops_per_sec" in info:
        values["ops_per_sec"] = scalar(info["instantaneous_ops_per_sec"])
    return findings


def _slowlog_findings(entries: list[dict[str, Any]], secrets: set[str]) -> Findings:
    rows: list[list[Any]] = []
    for entry in entries:
        command = json_safe(entry.get("command", b""))
        # Slowlog arguments are real traffic: values, keys, sometimes credentials.
        command = redact_text(str(command), secrets)
        if len(command) > _COMMAND_CHARS:
            command = command[: _COMMAND_CHARS - 1] + "…"
        rows.append(
            [
                entry.get("id"),
                _iso_from_epoch(entry.get("start_time")),
                round(int(entry.get("duration", 0)) / 1000.0, 3),
                command,
                json_safe(entry.get("client_address")),
            ]
        )
    durations = [row[2] for row in rows]
    return Findings(
        values={"slow_count": len(rows), "slowest_ms": max(durations) if durations else None},
        columns=["id", "started", "duration_ms", "command", "client"],
        rows=rows,
    )


def _client_findings(clients: list[dict[str, Any]], max_rows: int) -> Findings:
    def seconds(client: dict[str, Any], key: str) -> int:
        raw = str(client.get(key, "0"))
        return int(raw) if raw.isdigit() else 0

    # Longest idle first: leaked or stuck connections are what one looks for in this list.
    ordered = sorted(clients, key=lambda client: seconds(client, "idle"), reverse=True)
    rows = [
        [
            json_safe(client.get("id")),
            json_safe(client.get("addr")),
            json_safe(client.get("name")),
            seconds(client, "age"),
            seconds(client, "idle"),
            json_safe(client.get("db")),
            json_safe(client.get("cmd")),
            json_safe(client.get("flags")),
        ]
        for client in ordered[:max_rows]
    ]
    idle = sum(1 for client in clients if seconds(client, "idle") > _IDLE_CLIENT_S)
    return Findings(
        values={"clients": len(clients), "idle_clients_over_300s": idle},
        columns=_CLIENT_COLUMNS,
        rows=rows,
        truncated=len(clients) > max_rows,
    )


def _pairs_findings(pairs: dict[str, Any], max_rows: int) -> Findings:
    items = list(pairs.items())
    values: dict[str, Scalar] = {_NOT_A_NAME.sub("_", key.lower()): scalar(value) for key, value in items}
    return Findings(
        values=values,
        columns=["name", "value"],
        rows=[[key, json_safe(value)] for key, value in items[:max_rows]],
        truncated=len(items) > max_rows,
    )


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested INFO/MEMORY STATS entries (`db0: {keys: 3}`) as `db0.keys: 3`."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{json_safe(key)}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _number_or_text(value: Any) -> Scalar:
    text = str(json_safe(value))
    return int(text) if text.isdigit() else text


def _iso_from_epoch(value: Any) -> str | None:
    if not isinstance(value, int):
        return None
    return dt.datetime.fromtimestamp(value, tz=dt.UTC).isoformat()

"""Drivers: put the loopback world into the state that makes one check red (or green), for real.

Each driver reads the check's probe (the query, the path, the argv, the Redis figure) and its
rules (`values.value_for`), and changes what the servers and programs will answer. It never
touches the probe or the engine: what the check then reports is what the runner really observed.
A check no driver understands raises `NoDriver`; the test then fails unless the check is in
EXCEPTIONS with its reason. A reachability check (`unreachable: crit`) is driven red by taking its
target away (`drive_unreachable`).
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bot.demo.host import HostLayout
from bot.probes import CommandProbe, HttpProbe, PrometheusProbe, RedisProbe
from bot.runbooks.model import Check
from tests.conftest import free_port
from tests.runbooks.red.conftest import HttpRig, PrometheusRig, Reply
from tests.runbooks.red.values import NoDriver, State, value_for

# --- any network target: nothing answers -------------------------------------------------------


def drive_unreachable(check: Check) -> dict[str, str]:
    """The check's target at a loopback port nothing listens on, as `registry` arguments: red for a
    reachability check (`unreachable: crit`), and the failure every other check must call unknown."""
    port = free_port()  # bound to find a free number, then released: connections are refused
    match check.probe.kind:
        case "postgres":
            return {"app_db": f"postgresql://postgres@127.0.0.1:{port}/red"}
        case "redis":
            return {"cache": f"redis://127.0.0.1:{port}/0"}
        case "http":
            return {"api": f"http://127.0.0.1:{port}"}
        case "prometheus":
            return {"prometheus": f"http://127.0.0.1:{port}"}
    raise NoDriver(f"a {check.probe.kind} target has no port to close")


# --- Prometheus: the exact query answers the chosen value ---------------------------------------


def drive_prometheus(rig: PrometheusRig, check: Check, params: Mapping[str, Any], state: State) -> None:
    probe = check.probe
    assert isinstance(probe, PrometheusProbe)
    if check.value != "value":
        raise NoDriver(f"prometheus value {check.value!r}")
    value = value_for(check, state)
    if isinstance(value, bool | str):
        raise NoDriver(f"a Prometheus sample cannot be {value!r}")
    rig.answers.set(probe.render(dict(params)), ({"job": "red-suite"}, float(value)))


# --- HTTP: status, latency and body of the probed path ------------------------------------------

_FAILING = (503, 500, 502)


def drive_http(rig: HttpRig, check: Check, state: State) -> None:
    probe = check.probe
    assert isinstance(probe, HttpProbe)
    ok_status = probe.expect_status[0]
    value = value_for(check, state)
    reply = Reply(status=ok_status, json={})
    match check.value:
        case "status_ok":
            reply.status = ok_status if value else next(s for s in _FAILING if s not in probe.expect_status)
        case "status_code":
            reply.status = int(value)
        case "latency_ms":
            assert isinstance(value, int | float)
            # Red waits a little past the threshold; green answers at once (loopback, a few ms).
            reply.delay_s = value / 1000 + 0.05 if state == "red" else 0.0
        case "body_contains":
            assert probe.body_contains is not None
            reply.text = f"# metrics\n{probe.body_contains} 1\n" if value else "# nothing exported\n"
        case name if name in probe.json_fields:
            reply.json = _nested(probe.json_fields[name], value)
        case _:
            raise NoDriver(f"http value {check.value!r}")
    rig.set(probe.path, reply)


def _nested(path: str, value: object) -> dict[str, Any]:
    document: dict[str, Any] = {}
    current = document
    *parents, last = path.split(".")
    for part in parents:
        current = current.setdefault(part, {})
    current[last] = value
    return document


# --- the host: knobs of the stand-ins, files of the fake root -----------------------------------

# One line every log pattern of the catalogue finds, and one none of them does.
SICK_LOG_LINE = (
    "2026-01-01 00:00:00 ERROR error exception: out of memory MemoryError OOMKilled (oom) "
    "ws client=c1 Reconnecting in 1s"
)
HEALTHY_LOG_LINE = "2026-01-01 00:00:00 INFO request GET /health 200 4ms"
DAY_S = 86_400


def drive_command(host: HostLayout, check: Check, params: Mapping[str, Any], state: State) -> None:
    probe = check.probe
    assert isinstance(probe, CommandProbe)
    program, args = probe.argv[0], [_arg(a, params) for a in probe.argv[1:]]
    red = state == "red"
    match program, args:
        case "grep", _:
            _drive_grep(host, check, args, state)
        case "find", _:
            _drive_find(host, check, args, state)
        case "ls", ["-lt", directory]:
            # ls fails on a directory that is not there: no backups at all.
            path = host.root / directory
            if red:
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.mkdir(parents=True, exist_ok=True)
        case "docker", ["compose", "ps", "--all", "--format", "json", *service]:
            name = service[0] if service else "api"
            host.set_knob(f"container:{name}", "unhealthy" if red else "healthy")
        case "docker", ["info"]:
            host.set_knob("docker_daemon", "down" if red else "up")
        case "docker", ["logs", *_, container]:
            # A container that exited never logged "Uvicorn running on".
            host.set_knob(f"container:{container}", "exited" if red else "healthy")
        case "docker", ["exec", container, *_]:
            host.set_knob(f"container:{container}", "exited" if red else "healthy")
        case "systemctl", [("is-active" | "status"), unit]:
            host.set_knob(f"unit:{unit}", "failed" if red else "active")
        case "alembic", ["current"]:
            host.set_knob("alembic", "broken" if red else "ok")
        case "alembic", ["heads"]:
            host.set_knob("alembic", "two_heads" if red else "ok")
        case "git", ["log", "--all", *_]:
            host.set_knob("secret_commits", "some" if red else "none")
        case ("pytest", _) | ("git", ["diff", "--name-only", *_]):
            # These stand-ins say what the sick or healthy system would: failing smoke tests, a
            # release diff that mentions a secret.
            host.set_sick(red)
        case "gunzip", ["-t", "-r", directory]:
            path = host.root / directory
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
            dump = gzip.compress(b"-- dump\n" * 100)
            (path / "db_good.sql.gz").write_bytes(dump)
            if red:  # a backup cut off half way, as a full disk leaves it
                (path / "db_truncated.sql.gz").write_bytes(dump[: len(dump) // 2])
        case "df", _ if check.value == "matched_lines":
            host.set_knob("disk_root_pct", "96" if red else "41")
        case _:
            raise NoDriver(f"command {' '.join(probe.argv)}")


def _arg(arg: str, params: Mapping[str, Any]) -> str:
    return str(params[arg[1:-1]]) if arg.startswith("{") and arg.endswith("}") else arg


def _drive_grep(host: HostLayout, check: Check, args: list[str], state: State) -> None:
    if check.value != "output_lines":
        raise NoDriver(f"grep value {check.value!r}")
    options = [a for a in args if a.startswith("-")]
    pattern, *files = [a for a in args if not a.startswith("-")]
    flags = re.IGNORECASE if any("i" in o for o in options) else 0
    if not re.search(pattern, SICK_LOG_LINE, flags) or re.search(pattern, HEALTHY_LOG_LINE, flags):
        raise NoDriver(f"the sample log lines do not tell {pattern!r} apart")
    wanted = value_for(check, state)
    assert isinstance(wanted, int | float)
    sick = max(int(wanted), 0) if state == "red" else 0
    for relative in files:
        path = host.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [HEALTHY_LOG_LINE] * 5 + [SICK_LOG_LINE] * sick
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _drive_find(host: HostLayout, check: Check, args: list[str], state: State) -> None:
    """Fill the searched directory with exactly as many matching files as the state needs.

    Understands what the catalogue uses: `-name GLOB`, `-type f`, `-mtime -N|+N`, `-size -1k`.
    """
    if check.value != "output_lines":
        raise NoDriver(f"find value {check.value!r}")
    directory, *predicates = args
    pairs = dict(zip(predicates[::2], predicates[1::2], strict=False))
    unknown = set(pairs) - {"-name", "-type", "-mtime", "-size"}
    if unknown or pairs.get("-size", "-1k") != "-1k" or pairs.get("-type", "f") != "f":
        raise NoDriver(f"find {' '.join(args)}")
    wanted = value_for(check, state)
    assert isinstance(wanted, int | float)
    count = max(int(wanted), 0)
    root = host.root / directory
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    name = pairs.get("-name", "backup_*.sql.gz").replace("*", "{}")
    days = int(pairs.get("-mtime", "-1"))
    # `-mtime +N`: older than N whole days; `-mtime -N`: younger than N days.
    age_s, other_age_s = ((days + 1) * DAY_S, 600.0) if days > 0 else (600.0, (abs(days) + 5) * DAY_S)
    empty = "-size" in pairs  # `-size -1k` finds only empty files (sizes round up to 1k)
    for index in range(count):
        _file(root / name.format(f"match{index}"), age_s, empty=empty)
    # A file beside them that must not count, so the filter itself is exercised.
    if empty:
        _file(root / name.format("decoy"), age_s, empty=False)
    else:
        _file(root / name.format("decoy"), other_age_s, empty=False)


def _file(path: Path, age_s: float, *, empty: bool) -> None:
    path.write_bytes(b"" if empty else b"-- dump\n" * 512)
    then = time.time() - age_s
    os.utime(path, (then, then))


# --- Redis: real commands on the suite's own server ---------------------------------------------

_MB = 1024 * 1024


async def drive_redis(url: str, check: Check, state: State) -> None:
    probe = check.probe
    assert isinstance(probe, RedisProbe)
    red = state == "red"
    client = aioredis.from_url(url)
    try:
        match check.value:
            case "hit_rate":
                wanted = value_for(check, state)
                assert isinstance(wanted, int | float)
                hits = max(0, min(100, round(wanted)))
                await client.set("red:hot", "1")
                pipe = client.pipeline(transaction=False)
                for index in range(100):
                    await pipe.get("red:hot" if index < hits else f"red:missing:{index}")
                await pipe.execute()
            case "evicted_keys":
                if red:
                    await client.config_set("maxmemory-policy", "allkeys-lru")
                    await client.config_set("maxmemory", str(4 * _MB))
                    await _fill(client, megabytes=8)
                    await client.config_set("maxmemory", "0")
            case "keys":
                if not red:
                    await _fill(client, keys=200, size=16)
            case "used_memory_mb":
                if red:
                    wanted = value_for(check, state)
                    assert isinstance(wanted, int | float)
                    await _fill(client, megabytes=int(wanted) + 10)
            case "memory_used_pct":
                await _fill(client, megabytes=20)
                used = int((await client.info("memory"))["used_memory"])
                # Red: the limit reached (noeviction keeps what is there, writes would fail);
                # green: a tenth of it used. Used memory moves by a few % as buffers are freed.
                await client.config_set("maxmemory", str(int(used * 0.9 if red else used * 10)))
            case "pong":
                if red:
                    raise NoDriver("PING answers PONG or fails")
            case "redis_major":
                if red:
                    raise NoDriver("the server's version")
            case "maxmemory":
                await client.config_set("maxmemory", "0" if red else str(256 * _MB))
            case "maxmemory_policy":
                await client.config_set("maxmemory-policy", "noeviction" if red else "allkeys-lru")
            case _:
                raise NoDriver(f"redis value {check.value!r}")
    finally:
        await client.aclose()


async def _fill(client: aioredis.Redis, *, megabytes: int = 0, keys: int = 0, size: int = _MB) -> None:
    count = keys or megabytes
    value = b"x" * size
    for start in range(0, count, 50):
        pipe = client.pipeline(transaction=False)
        for index in range(start, min(start + 50, count)):
            await pipe.set(f"red:fill:{index}", value)
        await pipe.execute()

"""The loopback world the red/green suite drives, and the coverage table it prints at the end.

Every target name the catalogue uses points at something real on this machine that the test
sets: a fake Prometheus answering the exact query with the value the test chose, an aiohttp
server whose status, latency and body per path the test chose, the demo host's stand-in programs
with knobs, a private redis-server, and a fresh database (cloned from one seeded with the demo
schema) on a PostgreSQL primary and standby of the suite's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from aiohttp import web

from bot.demo.api import ApiState
from bot.demo.host import HostLayout, build_host
from bot.demo.prometheus import Answers, build_prometheus_app
from bot.demo.system import path_prepended, seed_app_schema
from bot.runbooks.catalogue import load_catalogue
from bot.targets import Targets
from tests.conftest import free_port, private_redis_server

RUNBOOKS = Path(__file__).resolve().parents[3] / "runbooks"
NOWHERE_DSN = "postgresql://opsbot@127.0.0.1:1/none"  # a valid DSN no test connects to


# --- the coverage table ---------------------------------------------------------------------------


@dataclass
class Seen:
    """What the suite saw of one check: its status in each state, or why a state was not driven."""

    red: str | None = None
    green: str | None = None
    exception: str | None = None


@dataclass
class Coverage:
    seen: dict[str, Seen] = field(default_factory=dict)

    def saw(self, key: str, state: str, status: str) -> None:
        setattr(self.seen.setdefault(key, Seen()), state, status)

    def excepted(self, key: str, reason: str) -> None:
        self.seen.setdefault(key, Seen()).exception = reason


COVERAGE_KEY = pytest.StashKey[Coverage]()


@pytest.fixture
def coverage(request: pytest.FixtureRequest) -> Coverage:
    return request.config.stash.setdefault(COVERAGE_KEY, Coverage())


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    found = config.stash.get(COVERAGE_KEY, None)
    if found is None or not found.seen:
        return
    write = terminalreporter.write_line
    terminalreporter.section("every threshold seen red (issue #15)")
    per_runbook: dict[str, list[int]] = {}
    exceptions: list[tuple[str, str]] = []
    for runbook in sorted(load_catalogue(RUNBOOKS), key=lambda r: r.id):
        for check in runbook.checks:
            if check.warn is None and check.crit is None:
                continue
            key = f"{runbook.id}:{check.id}"
            seen = found.seen.get(key, Seen())
            red_ok = seen.red is not None and seen.red != "ok" and seen.red == _red_of(check)
            row = per_runbook.setdefault(runbook.id, [0, 0, 0])
            row[0] += int(red_ok)
            row[1] += 1
            row[2] += int(seen.green == "ok")
            if seen.exception:
                exceptions.append((key, seen.exception))
    write(f"{'runbook':28} {'seen red':>9} {'thresholds':>11} {'seen green':>11}")
    for runbook_id, (red, total, green) in per_runbook.items():
        write(f"{runbook_id:28} {red:>9} {total:>11} {green:>11}")
    red = sum(r[0] for r in per_runbook.values())
    total = sum(r[1] for r in per_runbook.values())
    green = sum(r[2] for r in per_runbook.values())
    write(f"{'TOTAL':28} {red:>9} {total:>11} {green:>11}   ({100 * red / max(total, 1):.0f} % seen red)")
    write(f"exceptions ({len(exceptions)}):")
    for key, reason in exceptions:
        write(f"  {key}: {reason}")


def _red_of(check: Any) -> str:
    return "crit" if check.crit is not None else "warn"


# --- Prometheus ---------------------------------------------------------------------------------


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


@dataclass
class PrometheusRig:
    url: str
    answers: Answers


@pytest.fixture
async def prometheus() -> AsyncIterator[PrometheusRig]:
    answers = Answers()
    runner, url = await _serve(build_prometheus_app(ApiState(sick=False), answers))
    yield PrometheusRig(url, answers)
    await runner.cleanup()


# --- HTTP ---------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    delay_s: float = 0.0
    json: Any = None
    text: str | None = None


@dataclass
class HttpRig:
    url: str
    replies: dict[str, Reply] = field(default_factory=dict)

    def set(self, path: str, reply: Reply) -> None:
        self.replies[path] = reply


@pytest.fixture
async def http_api() -> AsyncIterator[HttpRig]:
    rig = HttpRig(url="")

    async def answer(request: web.Request) -> web.StreamResponse:
        reply = rig.replies.get(request.path, Reply(json={}))
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.text is not None:
            return web.Response(text=reply.text, status=reply.status)
        return web.json_response(reply.json if reply.json is not None else {}, status=reply.status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner, rig.url = await _serve(app)
    yield rig
    await runner.cleanup()


# --- the host -----------------------------------------------------------------------------------


@pytest.fixture
def host(tmp_path: Path) -> Iterator[HostLayout]:
    """The demo host, healthy; drivers turn its knobs and rewrite its fake root's files."""
    layout = build_host(tmp_path / "host", sick=False)
    with path_prepended(layout.bin_dir):
        yield layout


def host_target(layout: HostLayout) -> dict[str, Any]:
    return {"kind": "command", "allowed_programs": layout.allowed_programs, "cwd": str(layout.root)}


# --- Redis --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def private_redis_url() -> Iterator[str]:
    """A redis-server of the suite's own, so CONFIG SET and FLUSHALL touch nobody else's data."""
    with private_redis_server() as url:
        yield url


@pytest.fixture
def cache_url(private_redis_url: str) -> Iterator[str]:
    """The private Redis, empty, counters at zero, no memory limit, default policy."""
    client = redis.Redis.from_url(private_redis_url)
    client.flushall()
    client.config_set("maxmemory", 0)
    client.config_set("maxmemory-policy", "noeviction")
    client.config_resetstat()
    yield private_redis_url
    client.flushall()
    client.config_set("maxmemory", 0)
    client.config_set("maxmemory-policy", "noeviction")
    client.close()


# --- PostgreSQL: a private primary and standby ------------------------------------------------
#
# The suite brings its own server: red for connection counts needs dozens of sessions and red for
# max_connections nearly all of them, which on the machine's PostgreSQL (shared with every other
# suite running at the same moment) would refuse other people's connections — and their sessions
# would count in our server-wide checks. Its own server also preloads pg_stat_statements and has a
# streaming standby, which the machine's has not.

PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), default=Path("/nonexistent"))
TEMPLATE = "red_template"


@dataclass
class PrivatePostgres:
    """The suite's primary (max_connections 100, pg_stat_statements) and its streaming standby."""

    base: Path
    primary_port: int
    standby_port: int

    def dsn(self, database: str, *, standby: bool = False) -> str:
        port = self.standby_port if standby else self.primary_port
        return f"postgresql://postgres@127.0.0.1:{port}/{database}"

    def fresh_database(self) -> str:
        """A copy of the demo database (pg_stat_statements created) on the primary; its name."""
        name = f"red_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
        return name

    def wait_on_standby(self, name: str) -> None:
        """Until the standby has replayed the creation of database `name`."""
        with psycopg.connect(self.dsn("postgres", standby=True), autocommit=True) as conn:
            deadline = time.monotonic() + 10
            while not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                assert time.monotonic() < deadline, f"{name} never reached the standby"
                time.sleep(0.05)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _as_postgres(*argv: str | Path) -> None:
    """Run a server program as the postgres user (PostgreSQL refuses to run as root)."""
    command = [str(arg) for arg in argv]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)


def _start(data: Path, port: int, base: Path) -> None:
    options = " ".join(
        ["-c listen_addresses=127.0.0.1", f"-c port={port}", f"-c unix_socket_directories={base}",
         "-c fsync=off", "-c max_connections=100", "-c shared_preload_libraries=pg_stat_statements"]
    )  # fmt: skip
    _as_postgres(PG_BIN / "pg_ctl", "-D", data, "-l", base / f"{data.name}.log", "-w", "-o", options, "start")


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    if not (PG_BIN / "initdb").exists():
        pytest.fail("no PostgreSQL server binaries under /usr/lib/postgresql: install postgresql")
    base = Path(tempfile.mkdtemp(prefix="opsbot-red-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    server = PrivatePostgres(base, free_port(), free_port())
    primary, standby = base / "primary", base / "standby"
    try:
        _as_postgres(PG_BIN / "initdb", "-D", primary, "-A", "trust", "-U", "postgres", "--no-sync")
        _start(primary, server.primary_port, base)
        _as_postgres(
            PG_BIN / "pg_basebackup", "-D", standby, "-h", "127.0.0.1", "-p", str(server.primary_port),
            "-U", "postgres", "-R", "-X", "stream", "--no-sync",
        )  # fmt: skip
        _start(standby, server.standby_port, base)
        with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
            asyncio.run(seed_app_schema(server.dsn(TEMPLATE)))
            with psycopg.connect(server.dsn(TEMPLATE), autocommit=True) as template:
                template.execute("CREATE EXTENSION pg_stat_statements")
            deadline = time.monotonic() + 20
            while conn.execute("SELECT count(*) FROM pg_stat_replication").fetchone() != (1,):
                assert time.monotonic() < deadline, "the standby never connected"
                time.sleep(0.05)
        yield server
    finally:
        for data in (standby, primary):
            if (data / "postmaster.pid").exists():
                _as_postgres(PG_BIN / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def app_db(private_pg: PrivatePostgres) -> Iterator[str]:
    """A fresh copy of the demo database for one case, dropped (sessions and all) afterwards."""
    name = private_pg.fresh_database()
    yield name
    private_pg.drop_database(name)


AGE_S = 61.0
AGED_TEST = "test_aged_postgres_check"


@dataclass
class AgedDatabase:
    """A copy of the demo database where, since `since` (monotonic), one session has been running
    `pg_sleep` and another has sat idle in an open transaction."""

    dsn: str
    since: float

    def remaining_s(self) -> float:
        return max(0.0, self.since + AGE_S - time.monotonic())


@pytest.fixture(scope="session", autouse=True)
def aged_db(private_pg: PrivatePostgres) -> Iterator[AgedDatabase]:
    """Started with the suite's first case, so by the last ones (`AGED_TEST`, ordered last) its
    sessions are over a minute old — the age the minute-based checks need — at little extra wait."""
    name = private_pg.fresh_database()
    dsn = private_pg.dsn(name)
    running = psycopg.connect(dsn, autocommit=True, application_name="red-aged-report")
    running.pgconn.send_query(b"SELECT pg_sleep(3600)")  # sent, not awaited: the backend stays active
    idle = psycopg.connect(dsn, application_name="red-aged-worker")
    idle.execute("SELECT count(*) FROM users")  # opens a transaction that is never ended
    yield AgedDatabase(dsn, time.monotonic())
    running.cancel_safe()
    for conn in (running, idle):
        with contextlib.suppress(psycopg.Error):
            conn.close()
    private_pg.drop_database(name)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The aged cases go last, when `aged_db` has had the whole run to age."""
    aged = [item for item in items if getattr(item, "originalname", None) == AGED_TEST]
    if aged:
        items[:] = [item for item in items if item not in aged] + aged


# --- the registry -------------------------------------------------------------------------------


def registry(
    *,
    prometheus: str = "http://127.0.0.1:1",
    api: str = "http://127.0.0.1:1",
    host: HostLayout | None = None,
    cache: str = "redis://127.0.0.1:1/0",
    app_db: str = NOWHERE_DSN,
) -> Targets:
    """Every target name the catalogue's checks use, by kind; the ones a case does not drive point
    nowhere (a closed port), and command targets exist only when a host is given."""
    by_kind: dict[str, dict[str, Any]] = {
        "prometheus": {"kind": "prometheus", "base_url": prometheus},
        "http": {"kind": "http", "base_url": api},
        "redis": {"kind": "redis", "url": cache},
        "postgres": {"kind": "postgres", "dsn": app_db, "connect_timeout": 3},
    }
    if host is not None:
        by_kind["command"] = host_target(host)
    targets = {name: by_kind[kind] for name, kind in target_kinds().items() if kind in by_kind}
    return Targets.parse({"targets": targets}, source="red-suite")


@functools.cache
def target_kinds() -> dict[str, str]:
    """Each target name the catalogue's checks use, and its kind."""
    return {
        check.probe.target: check.probe.kind
        for runbook in load_catalogue(RUNBOOKS)
        for check in runbook.checks
    }

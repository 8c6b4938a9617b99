"""`SickSystem`: the whole simulated system, started and stopped as one.

    async with SickSystem.running(postgres_dsn=dsn, redis_url=url, workdir=tmp) as system:
        targets = system.load_targets()
        await system.leak_connections(50)
        ...

The HTTP side (backend blue and green, its neighbours RAG, guardrails, frontend and AI provider,
Prometheus) runs in-process on 127.0.0.1 free ports; the PostgreSQL and Redis are the caller's,
and the demo app schema is created in that database. The helpers that make the databases sick —
leaked idle connections, a slow query, a low cache hit rate — are undone when the context exits.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
import redis.asyncio as aioredis
import yaml
from aiohttp import web

from bot.demo.api import ApiState, build_api_app, build_service_app
from bot.demo.host import HostLayout, build_host
from bot.demo.prometheus import build_prometheus_app
from bot.targets import Targets, load_targets

DEMO_KEY_PREFIX = "opsbot-demo:"
NEIGHBOURS = ("rag", "guardrails", "frontend", "ai_provider")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
  id bigserial PRIMARY KEY, email text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS transactions (
  id bigserial PRIMARY KEY, user_id bigint NOT NULL, amount numeric(12, 2) NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS reconciliation_logs (
  id bigserial PRIMARY KEY, user_id text NOT NULL, created_at timestamptz NOT NULL, body text);
CREATE TABLE IF NOT EXISTS reconciliation_logs_archive (LIKE reconciliation_logs);
CREATE TABLE IF NOT EXISTS positions (id bigserial PRIMARY KEY, user_id text NOT NULL, symbol text);
CREATE INDEX IF NOT EXISTS ix_positions_user_id ON positions (user_id);
CREATE TABLE IF NOT EXISTS audit_logs (
  id bigserial PRIMARY KEY, created_at timestamptz DEFAULT now(), action text);
CREATE TABLE IF NOT EXISTS signals (id bigserial PRIMARY KEY, created_at timestamptz DEFAULT now());
CREATE TABLE IF NOT EXISTS approvals (id bigserial PRIMARY KEY, created_at timestamptz DEFAULT now());
CREATE TABLE IF NOT EXISTS feature_flags (
  name text PRIMARY KEY, enabled boolean NOT NULL DEFAULT false, kill_switch boolean NOT NULL DEFAULT false,
  rollout_percentage int NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS alembic_version (version_num varchar(32) PRIMARY KEY);
CREATE TABLE IF NOT EXISTS security_audit (
  id bigserial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(),
  actor text, action text, detail text);
CREATE TABLE IF NOT EXISTS events (user_id text NOT NULL, timestamp timestamptz NOT NULL, type text);
CREATE TABLE IF NOT EXISTS sessions (user_id text NOT NULL, created_at timestamptz NOT NULL, ip inet)
"""

_DATA = """
INSERT INTO users (email) SELECT 'user' || i || '@example.com' FROM generate_series(1, 3000) AS i;
INSERT INTO transactions (user_id, amount, created_at)
  SELECT 1 + i %% 3000, (i %% 500) + 0.99, now() - i * interval '1 minute' FROM generate_series(1, 6000) AS i;
INSERT INTO reconciliation_logs (user_id, created_at, body)
  SELECT 'user-' || (i %% 400), now() - (i %% 150) * interval '1 day', 'reconciled'
  FROM generate_series(1, 6000) AS i;
INSERT INTO positions (user_id, symbol) SELECT 'user-' || i, 'ACME' FROM generate_series(1, 50) AS i;
INSERT INTO signals DEFAULT VALUES; INSERT INTO approvals DEFAULT VALUES;
INSERT INTO feature_flags (name, enabled, kill_switch, rollout_percentage) VALUES
  ('rate_limit', true, false, 100), ('new_checkout', true, false, 25), ('ai_concierge', true, true, 100);
INSERT INTO alembic_version VALUES ('b7c1d2e3f4a5');
INSERT INTO security_audit (actor, action, detail) VALUES ('admin@example.com', 'login_failed', '5 attempts');
INSERT INTO events
  SELECT 'demo-user-1', now() - i * interval '1 hour', 'login' FROM generate_series(1, 5) AS i;
INSERT INTO sessions VALUES ('demo-user-1', now() - interval '2 hours', '127.0.0.1')
"""

DEMO_USER_ID = "demo-user-1"


class SickSystem:
    """The simulated system; build it with `SickSystem.running(...)`."""

    def __init__(self, *, postgres_dsn: str, redis_url: str, workdir: Path) -> None:
        self.postgres_dsn = postgres_dsn
        self.redis_url = redis_url
        self.workdir = workdir.resolve()
        self.api_state = ApiState(sick=True, name="blue", app_dsn=postgres_dsn)
        self.green_state = ApiState(sick=False, name="green")
        # The backend's neighbours (their own targets): sick and healthy with the backend, or
        # one at a time through their own state.
        self.service_states = {name: ApiState(sick=True, name=name) for name in NEIGHBOURS}
        self.host: HostLayout = build_host(self.workdir / "host", sick=True)
        self.urls: dict[str, str] = {}
        self.targets_file = self.workdir / "targets.yml"
        self._runners: list[web.AppRunner] = []
        self._leaked: list[psycopg.AsyncConnection[Any]] = []
        self._slow: list[tuple[psycopg.AsyncConnection[Any], asyncio.Task[Any]]] = []
        self._redis: aioredis.Redis | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def running(
        cls, *, postgres_dsn: str, redis_url: str, workdir: Path, seed_schema: bool = True
    ) -> AsyncIterator[SickSystem]:
        """Start everything, yield the system sick, and undo every sickness helper at exit.

        With `seed_schema`, the demo application tables (users, transactions, feature_flags, …)
        are created in the database and filled; they are left there (use a throwaway database).
        """
        system = cls(postgres_dsn=postgres_dsn, redis_url=redis_url, workdir=workdir)
        try:
            await system._start()
            if seed_schema:
                await system.seed_app_schema()
            yield system
        finally:
            await system._stop()

    async def _start(self) -> None:
        apps = {
            "api": build_api_app(self.api_state),
            "api_green": build_api_app(self.green_state),
            "prometheus": build_prometheus_app(self.api_state),
            **{name: build_service_app(state) for name, state in self.service_states.items()},
        }
        for name, app in apps.items():
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            self._runners.append(runner)
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            self.urls[name] = f"http://{host}:{port}"
        self.targets_file.write_text(yaml.safe_dump(self.targets_document(), sort_keys=False), "utf-8")

    async def _stop(self) -> None:
        await self.stop_slow_queries()
        await self.close_leaked_connections()
        if self._redis is not None:
            with suppress(Exception):
                await self.restore_hit_rate()
            await self._redis.aclose()
            self._redis = None
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()

    # --- targets --------------------------------------------------------------------------------

    def targets_document(self) -> dict[str, Any]:
        """The targets registry as data: standard names pointed at this system."""
        return {
            "targets": {
                "app_db": {"kind": "postgres", "dsn": self.postgres_dsn, "description": "demo app database"},
                "cache": {"kind": "redis", "url": self.redis_url, "description": "demo cache"},
                "api": {"kind": "http", "base_url": self.urls["api"], "description": "demo backend (blue)"},
                "api_green": {"kind": "http", "base_url": self.urls["api_green"], "description": "green"},
                "prometheus": {"kind": "prometheus", "base_url": self.urls["prometheus"]},
                **{
                    name: {"kind": "http", "base_url": self.urls[name], "description": f"demo {name}"}
                    for name in NEIGHBOURS
                },
                "host": {
                    "kind": "command",
                    "description": "demo host: stand-ins for infrastructure programs, fake root",
                    "allowed_programs": self.host.allowed_programs,
                    "cwd": str(self.host.root),
                },
            }
        }

    @property
    def path_env(self) -> str:
        """PATH with the stand-in directory first: set it when loading `targets_file` elsewhere."""
        return os.pathsep.join([str(self.host.bin_dir), os.environ.get("PATH", os.defpath)])

    def load_targets(self) -> Targets:
        """Load `targets_file` with the stand-ins first on PATH.

        The command target resolves its allowed programs on PATH when it is loaded, so PATH is
        switched for the duration of the (synchronous) load and restored right after.
        """
        with path_prepended(self.host.bin_dir):
            return load_targets(self.targets_file)

    # --- the HTTP side --------------------------------------------------------------------------

    def make_sick(self) -> None:
        """Backend degraded: /health and /ready 503, high 5xx rate and latency, host reports trouble;
        its neighbours (RAG, guardrails, frontend, AI provider) answer 503."""
        self.api_state.sick = True
        for state in self.service_states.values():
            state.sick = True
        self.host.set_sick(True)

    def make_healthy(self) -> None:
        self.api_state.sick = False
        for state in self.service_states.values():
            state.sick = False
        self.host.set_sick(False)

    # --- database sickness ----------------------------------------------------------------------

    async def seed_app_schema(self) -> None:
        """Create and fill the demo application tables (idempotent for the schema, not the rows)."""
        await seed_app_schema(self.postgres_dsn)

    async def leak_connections(self, count: int) -> int:
        """Open `count` connections to the app database and leave them idle; returns how many are open."""
        for _ in range(count):
            conn = await psycopg.AsyncConnection.connect(
                self.postgres_dsn, autocommit=True, application_name="demo-leaky-worker"
            )
            await conn.execute("SELECT 1")
            self._leaked.append(conn)
        return len(self._leaked)

    async def close_leaked_connections(self) -> None:
        leaked, self._leaked = self._leaked, []
        for conn in leaked:
            with suppress(Exception):
                await conn.close()

    async def start_slow_query(self, seconds: float = 120.0) -> int:
        """Run `SELECT pg_sleep(seconds)` on its own connection in the background; returns its pid."""
        conn = await psycopg.AsyncConnection.connect(
            self.postgres_dsn, autocommit=True, application_name="demo-slow-report"
        )
        pid = conn.info.backend_pid
        task = asyncio.create_task(conn.execute("SELECT pg_sleep(%s)", [seconds]))
        self._slow.append((conn, task))
        await asyncio.sleep(0.05)
        return pid

    async def stop_slow_queries(self) -> None:
        slow, self._slow = self._slow, []
        for conn, task in slow:
            if not task.done():
                with suppress(Exception):
                    await conn.cancel_safe()
            with suppress(Exception, asyncio.CancelledError):
                await task
            with suppress(Exception):
                await conn.close()

    # --- cache sickness -------------------------------------------------------------------------

    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = aioredis.from_url(self.redis_url)
        return self._redis

    async def lower_hit_rate(self, *, hits: int = 40, misses: int = 160) -> None:
        """Do `hits` reads of demo keys that exist and `misses` reads of unique keys that do not."""
        client = self._client()
        await client.set(f"{DEMO_KEY_PREFIX}hot", "1")
        for _ in range(hits):
            await client.get(f"{DEMO_KEY_PREFIX}hot")
        for index in range(misses):
            await client.get(f"{DEMO_KEY_PREFIX}missing:{index}")

    async def restore_hit_rate(self) -> None:
        """Remove the demo's keys. (INFO counters only reset with CONFIG RESETSTAT or a restart.)"""
        client = self._client()
        keys = [key async for key in client.scan_iter(match=f"{DEMO_KEY_PREFIX}*")]
        if keys:
            await client.delete(*keys)


async def seed_app_schema(dsn: str) -> None:
    """Create and fill the demo application tables in database `dsn` (skipped if they exist)."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        if (await (await conn.execute("SELECT to_regclass('public.alembic_version')")).fetchone()) == (
            "alembic_version",
        ):
            return
        for statement in _SCHEMA.split(";\n"):
            await conn.execute(statement)
        for statement in _DATA.split(";"):
            if statement.strip():
                await conn.execute(statement.replace("%%", "%"))
        await conn.execute("ANALYZE")


@contextmanager
def path_prepended(directory: Path) -> Iterator[None]:
    """PATH with `directory` first, for a command target loaded meanwhile (it resolves programs then)."""
    previous = os.environ.get("PATH")
    os.environ["PATH"] = os.pathsep.join([str(directory), previous or os.defpath])
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = previous

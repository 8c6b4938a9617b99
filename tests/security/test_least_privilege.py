"""SECURITY.md's least-privilege recipes, run as written: the grants suffice and withhold what they should.

The SQL and the Redis ACL lines are read out of SECURITY.md, so the document cannot drift from
what works: every check of the shipped catalogue runs as the diagnosis role, every action as the
action role, and a check written to terminate sessions is refused to the diagnosis role.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shlex
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio
import redis
from psycopg import sql

from bot.actions import ActionExecutor
from bot.coordination import RedisCoordinator
from bot.demo import SickSystem
from bot.probes import ProbeRunner
from bot.probes.postgres import PostgresProbe
from bot.runbooks.params import bind_params
from bot.targets import Targets
from tests.security.conftest import ROOT
from tests.security.inputs import COMMAND_CATALOGUE, plausible_values

RUN = secrets.token_hex(3)
PASSWORD = f"lp-{secrets.token_hex(8)}"
# Steps that change the PostgreSQL server's own configuration: their grants are applied, but they
# are not run against a server other test runs share.
SERVER_WIDE = ("ALTER SYSTEM", "pg_reload_conf")


def section(heading: str) -> str:
    text = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    start = text.index(f"\n### {heading}\n")
    end = text.find("\n### ", start + 1)
    return text[start : end if end != -1 else len(text)]


def fenced(heading: str, language: str = "") -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(heading), re.S)


@dataclass(frozen=True)
class Roles:
    diagnose: str
    act: str
    application: str

    def dsn(self, base: str, role: str) -> str:
        scheme, rest = base.split("://", 1)
        return f"{scheme}://{role}:{PASSWORD}@{rest.split('@', 1)[-1]}"


@pytest.fixture
def roles(pg_admin_url: str, app_db_url: str) -> Iterator[Roles]:
    names = Roles(f"opsbot_diagnose_{RUN}", f"opsbot_act_{RUN}", f"app_{RUN}")
    yield names
    with psycopg.connect(app_db_url, autocommit=True) as conn:
        for role in (names.diagnose, names.act, names.application):
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for role in (names.diagnose, names.act, names.application):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest_asyncio.fixture
async def application(app_db_url: str, redis_url: str, tmp_path: Path, roles: Roles) -> AsyncIterator[str]:
    """The demo application's schema, the roles from SECURITY.md, and an application role."""
    await SickSystem(postgres_dsn=app_db_url, redis_url=redis_url, workdir=tmp_path).seed_app_schema()
    database = app_db_url.rsplit("/", 1)[1].split("?")[0]
    recipe = (
        fenced("PostgreSQL", "sql")[0]
        .replace("DATABASE app ", f'DATABASE "{database}" ')
        .replace("opsbot_diagnose", roles.diagnose)
        .replace("opsbot_act", roles.act)
        .replace("'change-me'", f"'{PASSWORD}'")
    )
    async with await psycopg.AsyncConnection.connect(app_db_url, autocommit=True) as conn:
        await conn.execute(recipe.encode())
        await conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}; GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(roles.application),
                sql.Literal(PASSWORD),
                sql.Identifier(database),
                sql.Identifier(roles.application),
            )
        )
    yield app_db_url


def _params(runbook: Any, extra: list[Any]) -> dict[str, Any]:
    params = [*runbook.params, *extra]
    words = [f"{p.name}={plausible_values(p)[0]}" for p in params if p.required]
    values = bind_params(params, words)
    # The terminate and cancel actions act on sessions idle or running for at least this long.
    return {**values, **{p.name: 0 for p in params if p.type == "int" and p.min == 0}}


async def _idle_sessions(dsn: str, count: int) -> list[psycopg.AsyncConnection[Any]]:
    sessions = [await psycopg.AsyncConnection.connect(dsn, autocommit=True) for _ in range(count)]
    for session in sessions:
        await session.execute("SELECT 1")
    return sessions


async def _alive(sessions: list[psycopg.AsyncConnection[Any]]) -> int:
    alive = 0
    for session in sessions:
        try:
            await session.execute("SELECT 1")
            alive += 1
        except psycopg.OperationalError:
            pass
    return alive


@pytest.mark.asyncio
async def test_every_check_runs_as_the_diagnosis_role_which_cannot_stop_sessions(
    application: str, roles: Roles
) -> None:
    targets = Targets.parse(
        {"targets": {"app_db": {"kind": "postgres", "dsn": roles.dsn(application, roles.diagnose)}}}
    )
    sessions = await _idle_sessions(roles.dsn(application, roles.application), 3)
    ran = 0
    try:
        async with ProbeRunner(targets) as runner:
            for runbook in COMMAND_CATALOGUE:
                specs = [(c.probe, []) for c in runbook.checks] + [
                    (a.preview, list(a.params)) for a in runbook.actions if a.preview is not None
                ]
                for spec, extra in specs:
                    if spec.kind != "postgres":
                        continue
                    result = await runner.run(spec, _params(runbook, extra), run_id="lp", timeout_s=10)
                    ran += 1
                    assert "permission denied" not in (result.error or ""), (runbook.id, result.error)
                    assert "must be" not in (result.error or ""), (runbook.id, result.error)
            malicious = PostgresProbe(
                target="app_db",
                sql="SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity"
                " WHERE usename = %(u)s",
                binds={"u": roles.application},
            )
            refused = await runner.run(malicious, {}, run_id="lp", timeout_s=10)
        assert refused.status == "error" and "pg_signal_backend" in (refused.error or ""), refused
        assert await _alive(sessions) == 3
    finally:
        for session in sessions:
            await session.close()
    assert ran >= 30


@pytest.mark.asyncio
async def test_every_action_runs_as_the_action_role_except_what_needs_the_owner(
    application: str, roles: Roles
) -> None:
    targets = Targets.parse(
        {"targets": {"app_db": {"kind": "postgres", "dsn": roles.dsn(application, roles.act)}}}
    )
    sessions = await _idle_sessions(roles.dsn(application, roles.application), 3)
    outcomes: dict[str, tuple[str, str]] = {}
    try:
        async with ActionExecutor(targets) as executor:
            for runbook in COMMAND_CATALOGUE:
                for action in runbook.actions:
                    step = action.step
                    if step.kind != "postgres" or any(w in step.sql for w in SERVER_WIDE):
                        continue
                    result = await executor.run(
                        step, _params(runbook, list(action.params)), run_id="lp", timeout_s=30
                    )
                    outcomes[f"{runbook.id}:{action.id}"] = (result.status, result.error or "")
        assert await _alive(sessions) == 0, "the terminate actions stopped the application's idle sessions"
    finally:
        for session in sessions:
            await session.close()
    assert len(outcomes) >= 15
    for name, (status, error) in outcomes.items():
        if re.search(r"create_idx|create_ix|reindex", name):  # SECURITY.md: these need the owner
            assert status == "failed" and "must be owner" in error, (name, status, error)
        else:
            assert status == "succeeded", (name, status, error)


@pytest.fixture
def redis_users(redis_url: str) -> Iterator[tuple[redis.Redis, dict[str, str]]]:
    admin = redis.Redis.from_url(redis_url)
    names = {"opsbot-diagnose": f"opsbot-diagnose-{RUN}", "opsbot": f"opsbot-coord-{RUN}"}
    try:
        admin.acl_list()
    except redis.ResponseError:
        pytest.skip("this Redis has no ACLs")
    yield admin, names
    for name in names.values():
        admin.acl_deluser(name)
    admin.close()


def _acl(line: str, names: dict[str, str]) -> list[str]:
    words = shlex.split(line.strip())
    words[2] = names[words[2]]
    return [w.replace("change-me", PASSWORD) for w in words]


@pytest.mark.asyncio
async def test_the_redis_acls_allow_the_checks_and_the_coordination_and_nothing_else(
    redis_url: str, redis_users: tuple[redis.Redis, dict[str, str]]
) -> None:
    admin, names = redis_users
    diagnose_acl, coordination_acl = fenced("Redis")
    admin.execute_command(*_acl(diagnose_acl, names))
    admin.execute_command(*_acl(coordination_acl, names))
    host = redis_url.split("://", 1)[1].rsplit("/", 1)[0]

    diagnose_url = f"redis://{names['opsbot-diagnose']}:{PASSWORD}@{host}/0"
    targets = Targets.parse({"targets": {"cache": {"kind": "redis", "url": diagnose_url}}})
    ran = 0
    async with ProbeRunner(targets) as runner:
        for runbook in COMMAND_CATALOGUE:
            for check in runbook.checks:
                if check.probe.kind == "redis":
                    result = await runner.run(check.probe, _params(runbook, []), run_id="lp", timeout_s=5)
                    ran += 1
                    assert result.status == "ok", (runbook.id, check.id, result.error)
    assert ran >= 5
    with redis.Redis.from_url(diagnose_url) as client, pytest.raises(redis.exceptions.NoPermissionError):
        client.set("opsbot-diagnose-wrote", "1")

    coordination = RedisCoordinator(f"redis://{names['opsbot']}:{PASSWORD}@{host}/0")
    try:
        assert await coordination.first_delivery(f"lp-{RUN}", 60)
        assert not await coordination.first_delivery(f"lp-{RUN}", 60)
        await coordination.cache_set(f"lp-{RUN}", b"cached", 5)
        assert await coordination.cache_get(f"lp-{RUN}") == b"cached"
        async with coordination.lock(f"lp-{RUN}", ttl_seconds=5, wait_seconds=1):
            await asyncio.sleep(0)
        assert not coordination.degraded
    finally:
        await coordination.close()
    with redis.Redis.from_url(f"redis://{names['opsbot']}:{PASSWORD}@{host}/0") as client:
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.get("not-opsbot:anything")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.flushdb()

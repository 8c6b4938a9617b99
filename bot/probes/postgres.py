"""PostgreSQL probes: a read-only query with bind parameters, a timeout and a row cap.

The SQL text comes from the runbook; values come from parameters and only ever travel as bind
parameters (`%(name)s`). Each run is one transaction that is `READ ONLY`, has a `statement_timeout`
slightly shorter than the probe's own timeout (so the server stops the query and the connection
stays usable), and carries `application_name = 'opsbot:<run id>'` so a DBA sees who is asking.

`EXPLAIN (FORMAT JSON)` without ANALYZE (the planner's plan; the statement does not run) also
gives `seq_scans`, `index_scans` and `indexes_used`, so a check can see a sequential scan and
verify that an index is used.

Connection handling (`PostgresPools`, `transaction`) is separate from the probe so the action
executor can reuse it with `read_only=False`.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any, Literal, Self

import psycopg
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import Field, model_validator

from bot.probes.base import (
    BindValue,
    Call,
    Findings,
    ProbeFailed,
    SpecBase,
    check_literal_or_ref,
    first_line,
    refs_in,
)
from bot.probes.result import Scalar, json_safe, scalar
from bot.targets import PostgresTarget

# %% is a literal percent, %(name)s a bind parameter; psycopg also knows %(name)b / %(name)t.
_PERCENT = re.compile(r"%(?:(?P<pct>%)|\((?P<name>[A-Za-z_][A-Za-z0-9_]*)\)[sbt]|(?P<bad>.?))", re.S)
# The server should give up before our own asyncio timeout fires, leaving the connection clean.
_SERVER_MARGIN_S = 0.25
_MAX_POOL_SIZE = 4


class PostgresProbe(SpecBase):
    """A read-only SQL query. Bind values are literals or `{param}` references."""

    kind: Literal["postgres"] = "postgres"
    sql: str = Field(min_length=1, max_length=100_000)
    binds: dict[str, BindValue] = Field(default_factory=dict)
    max_rows: int = Field(100, ge=1, le=10_000)
    # An extension the query reads (its views do not even parse without it): where it is not
    # created and loaded, the query is not run and the probe says how to enable it instead.
    requires_extension: Literal["pg_stat_statements"] | None = None

    @model_validator(mode="after")
    def _placeholders_match_binds(self) -> Self:
        used: set[str] = set()
        for match in _PERCENT.finditer(self.sql):
            if match.group("bad") is not None:
                raise ValueError(
                    "sql: only named bind parameters %(name)s are allowed; write %% for a literal %"
                )
            if match.group("name"):
                used.add(match.group("name"))
        if missing := sorted(used - set(self.binds)):
            raise ValueError(f"sql uses %({missing[0]})s but binds has no {missing[0]!r}")
        if unused := sorted(set(self.binds) - used):
            raise ValueError(f"binds.{unused[0]} is not used in sql")
        for name, value in self.binds.items():
            check_literal_or_ref(value, f"binds.{name}")
        return self

    def param_names(self) -> frozenset[str]:
        return refs_in(self.binds)


@asynccontextmanager
async def transaction(
    conn: AsyncConnection[TupleRow], *, read_only: bool, timeout_ms: int, application_name: str
) -> AsyncIterator[None]:
    """One transaction with a server-side statement timeout and our application name.

    Read-only transactions are always rolled back: there is nothing to keep, and a check never
    leaves anything behind even if the SQL tried.
    """
    async with conn.transaction(force_rollback=read_only):
        if read_only:
            # Must be the first statement of the transaction to take effect.
            await conn.execute("SET TRANSACTION READ ONLY")
        await conn.execute(
            "SELECT set_config('statement_timeout', %(timeout)s, true),"
            " set_config('application_name', %(app)s, true)",
            {"timeout": str(timeout_ms), "app": application_name},
        )
        yield


async def execute_one(cur: AsyncCursor[TupleRow], sql: str, binds: Mapping[str, Any]) -> None:
    """Execute exactly one statement.

    With no bind values psycopg would use the simple query protocol, which runs several
    `;`-separated statements, and `SELECT 1; COMMIT; DROP ...` would end the read-only
    transaction and run the rest outside it. Pipeline mode always uses the extended protocol,
    where the server refuses a second statement.
    """
    async with cur.connection.pipeline():
        await cur.execute(sql, binds)


class _TargetPool:
    """A small pool for one target that tells a waiting probe at once why connecting failed.

    psycopg_pool retries failed connections in the background and only tells a waiting client
    "couldn't get a connection after N sec". The on-call engineer needs "Connection refused" or
    "password authentication failed", and needs it now rather than after the whole timeout, so the
    connection class reports each failure to whoever is waiting.
    """

    def __init__(self, name: str, target: PostgresTarget) -> None:
        self._waiters: set[asyncio.Future[str]] = set()
        self._opened = False
        self.pool: AsyncConnectionPool[AsyncConnection[TupleRow]] = AsyncConnectionPool(
            target.dsn.get_secret_value(),
            connection_class=_reporting_connection_class(self._report),
            kwargs={
                "autocommit": True,
                "application_name": "opsbot",
                "connect_timeout": max(2, math.ceil(target.connect_timeout)),
                # Prepared statements break behind a transaction-pooling PgBouncer.
                "prepare_threshold": None,
            },
            min_size=0,
            max_size=_MAX_POOL_SIZE,
            open=False,
            name=f"probe:{name}",
            check=AsyncConnectionPool.check_connection,
            max_idle=300.0,
            # No background reconnection loop with growing backoff: the next probe tries afresh
            # and learns the current state at once, instead of waiting out the pool's backoff.
            reconnect_timeout=0.0,
        )

    def _report(self, exc: psycopg.OperationalError) -> None:
        reason = connect_reason(exc)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(reason)

    @asynccontextmanager
    async def connection(self, wait_s: float) -> AsyncIterator[AsyncConnection[TupleRow]]:
        if not self._opened:
            await self.pool.open(wait=False)
            self._opened = True
        failure: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters.add(failure)
        getconn = asyncio.ensure_future(self.pool.getconn(wait_s))
        racing: set[asyncio.Future[Any]] = {getconn, failure}
        try:
            await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            await self._abandon(getconn)
            raise
        finally:
            self._waiters.discard(failure)
        if not getconn.done():
            await self._abandon(getconn)
            raise ProbeFailed(f"cannot connect: {failure.result()}")
        try:
            conn = getconn.result()
        except PoolTimeout:
            raise ProbeFailed(f"no database connection within {wait_s:.1f}s", status="timeout") from None
        try:
            yield conn
        finally:
            await self.pool.putconn(conn)

    async def _abandon(self, getconn: asyncio.Future[AsyncConnection[TupleRow]]) -> None:
        """Stop waiting for a connection; one that arrived meanwhile goes back to the pool."""
        getconn.cancel()
        with suppress(asyncio.CancelledError, PoolTimeout):
            await self.pool.putconn(await getconn)

    async def close(self) -> None:
        if self._opened:
            await self.pool.close()


def _reporting_connection_class(
    report: Callable[[psycopg.OperationalError], None],
) -> type[AsyncConnection[TupleRow]]:
    class _ReportingConnection(AsyncConnection[TupleRow]):
        @classmethod
        async def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
            try:
                return await super().connect(conninfo, **kwargs)
            except psycopg.OperationalError as exc:
                report(exc)
                raise

    return _ReportingConnection


def connect_reason(exc: BaseException) -> str:
    """'Connection refused' out of libpq's 'connection to server at "h", port 5432 failed: ...'."""
    line = first_line(str(exc))
    reason = line.rsplit(" failed: ", 1)[-1]
    return reason.removeprefix("FATAL:").strip() or type(exc).__name__


class PostgresPools:
    """One pool per postgres target, opened on first use and closed with the runner."""

    def __init__(self) -> None:
        self._pools: dict[str, _TargetPool] = {}

    @asynccontextmanager
    async def connection(
        self, name: str, target: PostgresTarget, *, wait_s: float
    ) -> AsyncIterator[AsyncConnection[TupleRow]]:
        pool = self._pools.get(name)
        if pool is None:
            pool = self._pools[name] = _TargetPool(name, target)
        async with pool.connection(wait_s) as conn:
            yield conn

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(*(pool.close() for pool in pools))


async def run_postgres(
    spec: PostgresProbe, target: PostgresTarget, pools: PostgresPools, call: Call
) -> Findings:
    binds = {name: call.resolve(value) for name, value in spec.binds.items()}
    async with pools.connection(spec.target, target, wait_s=call.remaining()) as conn:
        remaining = call.remaining()
        timeout_ms = max(1, int((remaining - min(_SERVER_MARGIN_S, remaining / 5)) * 1000))
        try:
            async with transaction(
                conn, read_only=True, timeout_ms=timeout_ms, application_name=f"opsbot:{call.run_id}"
            ):
                cur = conn.cursor()
                if spec.requires_extension and (
                    missing := await _missing_extension(cur, spec.requires_extension)
                ):
                    return Findings(values={"reason": missing, "row_count": 0})
                await execute_one(cur, spec.sql, binds)
                if cur.description is None:
                    return Findings(values={"row_count": 0})
                columns = [column.name for column in cur.description]
                fetched = await cur.fetchmany(spec.max_rows + 1)
        except psycopg.errors.QueryCanceled as exc:
            if "statement timeout" in str(exc):
                raise ProbeFailed(f"timed out after {call.timeout_s:g}s", status="timeout") from None
            raise
    rows = [[json_safe(cell) for cell in row] for row in fetched[: spec.max_rows]]
    values: dict[str, Any] = {}
    for position, column in enumerate(columns):
        values.setdefault(column, scalar(rows[0][position]) if rows else None)
    values["row_count"] = len(rows)
    if columns == ["QUERY PLAN"] and rows:
        values |= plan_figures(rows[0][0])
    return Findings(values=values, columns=columns, rows=rows, truncated=len(fetched) > spec.max_rows)


async def _missing_extension(cur: psycopg.AsyncCursor[Any], extension: str) -> str | None:
    """What keeps `extension` from being read here, with how to enable it; None when it is usable.

    pg_stat_statements needs both: the library preloaded (server setting, restart) and the
    extension created in this database.
    """
    await cur.execute(
        """SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = %(name)s),
                  %(name)s = ANY (string_to_array(
                      replace(current_setting('shared_preload_libraries'), ' ', ''), ','))""",
        {"name": extension},
    )
    row = await cur.fetchone()
    created, preloaded = (bool(row[0]), bool(row[1])) if row else (False, False)
    preload = f"set shared_preload_libraries = '{extension}' in postgresql.conf and restart PostgreSQL"
    create = f"CREATE EXTENSION {extension}"
    if not created and not preloaded:
        return f"{extension} is not enabled: {preload}, then {create}"
    if not created:
        return f"{extension} is loaded but not created in this database: {create}"
    if not preloaded:
        return f"{extension} is created but not loaded: {preload}"
    return None


_INDEX_SCANS = frozenset({"Index Scan", "Index Only Scan", "Bitmap Index Scan"})


def plan_figures(plan: Any) -> dict[str, Scalar]:
    """What an `EXPLAIN (FORMAT JSON)` plan says in numbers a rule can judge: how many sequential
    scans and index scans it has, and which indexes it uses. Any other answer gives nothing."""
    if not (isinstance(plan, list) and plan and isinstance(plan[0], dict) and "Plan" in plan[0]):
        return {}
    seq_scans = index_scans = 0
    indexes: list[str] = []
    nodes = [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        if not isinstance(node, dict):
            continue
        kind = node.get("Node Type")
        if kind == "Seq Scan":
            seq_scans += 1
        elif kind in _INDEX_SCANS:
            index_scans += 1
            indexes.append(str(node.get("Index Name", "")))
        nodes += node.get("Plans", [])
    return {"seq_scans": seq_scans, "index_scans": index_scans, "indexes_used": ", ".join(sorted(indexes))}

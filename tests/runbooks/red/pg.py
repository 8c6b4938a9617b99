"""PostgreSQL drivers: real sessions, locks, statements and rows in the case's own database.

Red is made the way production gets there — leaked idle connections, statements that keep
running, a session holding a lock others queue behind, dead rows nobody vacuumed, a missing
table or index, a kill switch left on — and green is the same database put right.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

import psycopg

from bot.probes import PostgresProbe
from bot.runbooks.model import Check
from tests.runbooks.red.values import NoDriver, State, value_for

Conn = psycopg.AsyncConnection[Any]

# The indexes the seeds add (db.indexes, deploy.fresh), as the seeds define them.
SEED_INDEXES = {
    "idx_users_email": "users (email)",
    "idx_transactions_user_id": "transactions (user_id)",
    "idx_transactions_user_id_created_at": "transactions (user_id, created_at)",
    "ix_reconciliation_user_created": "reconciliation_logs (user_id, created_at)",
    "ix_positions_user_id": "positions (user_id)",
}


class Sessions:
    """Connections and background statements a case opens; all closed or cancelled at the end."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conns: list[Conn] = []
        self.background: list[tuple[Conn, asyncio.Task[Any]]] = []

    async def connect(self, *, app: str = "red-suite", autocommit: bool = True) -> Conn:
        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=autocommit, application_name=app)
        self.conns.append(conn)
        return conn

    async def execute(self, *statements: str) -> None:
        """Run statements on a connection of their own, closed right after (stats get flushed)."""
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            for statement in statements:
                await conn.execute(statement)

    async def idle(self, count: int) -> None:
        """`count` connections that ran one statement and were left idle (a leak)."""
        for _ in range(count):
            conn = await self.connect(app="red-leaky-worker")
            await conn.execute("SELECT 1")

    async def running(self, count: int, statement: str = "SELECT pg_sleep(60)") -> None:
        """`count` sessions each running `statement` in the background until the case ends."""
        for _ in range(count):
            conn = await self.connect(app="red-slow-report")
            task = asyncio.create_task(conn.execute(statement))
            self.background.append((conn, task))

    async def wait_until(self, sql: str, **binds: object) -> None:
        """Poll `sql` (one boolean) until it is true: backends report their state a moment late."""
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            for _ in range(100):
                row = await (await conn.execute(sql, binds)).fetchone()
                if row and row[0]:
                    return
                await asyncio.sleep(0.05)
        raise AssertionError(f"never became true: {sql}")

    async def close(self) -> None:
        for conn, task in self.background:
            if not task.done():
                with suppress(Exception):
                    await conn.cancel_safe()
        for _, task in self.background:
            with suppress(Exception, asyncio.CancelledError):
                await task
        for conn in self.conns:
            with suppress(Exception):
                await conn.close()
        self.conns.clear()
        self.background.clear()


def _count(check: Check, state: State) -> int:
    wanted = value_for(check, state)
    if isinstance(wanted, bool) or not isinstance(wanted, int | float):
        raise NoDriver(f"{check.id}: a count cannot be {wanted!r}")
    return max(int(wanted), 0)


async def drive_postgres(sessions: Sessions, check: Check, params: Mapping[str, Any], state: State) -> None:
    probe = check.probe
    assert isinstance(probe, PostgresProbe)
    sql = " ".join(probe.sql.split())
    red = state == "red"
    match check.value:
        case "total" | "idle" | "stuck" if check.value != "stuck" or "state = 'idle'" in sql:
            # Leaked idle connections (db.connections' idle_stuck runs with idle_minutes=0).
            if red:
                await sessions.idle(_count(check, state))
        case "stuck" | "over_limit" | "idle_in_xact":
            # Red needs minutes of age (see EXCEPTIONS); green is a database with nothing that old.
            if red:
                raise NoDriver("a statement or transaction minutes old")
        case "waiting":
            await _lock_waiters(sessions, _count(check, state) if red else 0)
        case "slow" | "active":
            count = _count(check, state) if red else 0
            if count:
                await sessions.running(count)
                await sessions.wait_until(
                    "SELECT count(*) >= %(count)s FROM pg_stat_activity"
                    " WHERE application_name = 'red-slow-report' AND state = 'active'",
                    count=count,
                )
            if count and ("min_seconds" in probe.binds or "interval '1 second'" in sql):
                await asyncio.sleep(float(params.get("min_seconds", 1)) + 0.3)
        case "running_s":
            if red:
                raise NoDriver("a statement running for minutes")
            await sessions.running(1)  # a statement that has just started
            await sessions.wait_until(
                "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'red-slow-report'"
                " AND state = 'active'"
            )
        case "missing" | "seq_scans":
            # The demo database lacks most seed indexes; with them the planner uses index scans.
            if not red:
                indexes = (f"CREATE INDEX IF NOT EXISTS {n} ON {t}" for n, t in SEED_INDEXES.items())
                await sessions.execute(*indexes, "ANALYZE")
        case "present" if "pg_indexes" in sql:
            await sessions.execute(
                "CREATE INDEX IF NOT EXISTS ix_reconciliation_user_created"
                f" ON {SEED_INDEXES['ix_reconciliation_user_created']}"
                if not red
                else "DROP INDEX IF EXISTS ix_reconciliation_user_created"
            )
        case "present" if "information_schema.tables" in sql:
            if red:
                await sessions.execute("DROP TABLE signals")
        case "row_count" if "pg_stat_user_tables" in sql and "seq_scan" in sql:
            # Statistics say transactions is big; red reads it by sequential scans, green by its key.
            scan = "SELECT count(*) FROM transactions WHERE amount > 100"
            lookup = "SELECT * FROM transactions WHERE id = 42"
            await sessions.execute("ANALYZE transactions", *[scan if red else lookup] * 3)
        case "stale":
            await sessions.execute("ANALYZE" if red else "VACUUM ANALYZE")
        case "dead_pct":
            await sessions.execute(
                "CREATE TABLE churn (id int) WITH (autovacuum_enabled = false)",
                "INSERT INTO churn SELECT generate_series(1, 1000)",
                *(["DELETE FROM churn WHERE id <= 600"] if red else []),  # 60 % dead, never vacuumed
            )
        case "old_rows":
            if not red:
                await sessions.execute(
                    "DELETE FROM reconciliation_logs WHERE created_at < now() - interval '90 days'"
                )
        case "row_count" if "alembic_version" in sql:
            if red:
                await sessions.execute("DELETE FROM alembic_version")
        case "row_count" if "security_audit" in sql:
            if not red:
                await sessions.execute("UPDATE security_audit SET created_at = now() - interval '2 days'")
        case "killed":
            if not red:
                await sessions.execute("UPDATE feature_flags SET kill_switch = false")
        case "available" | "standbys" | "in_recovery":
            # The server the case runs on is the state: the suite's primary (pg_stat_statements, one
            # standby) or standby, or the machine's lone, plain primary (SERVER in the test module).
            pass
        case "used_pct":
            if red:  # every connection slot but two taken by leaked idle connections
                await sessions.idle(await _free_slots(sessions) - 2)
        case "mean_ms":
            if red:
                await sessions.execute("SELECT pg_sleep(1.1)")
            else:
                await sessions.execute(
                    "SELECT pg_stat_statements_reset()", *["SELECT count(*) FROM pg_class"] * 3
                )
        case "lag_s" | "major" | "ok":
            if red:
                raise NoDriver(f"{check.value}: see EXCEPTIONS")
        case "row_count" if "now()" in sql and "FROM" not in sql.upper():
            if red:
                raise NoDriver("SELECT now() returns one row whenever it runs")
        case _:
            raise NoDriver(f"postgres value {check.value!r}")


async def _free_slots(sessions: Sessions) -> int:
    async with await psycopg.AsyncConnection.connect(sessions.dsn, autocommit=True) as conn:
        row = await (
            await conn.execute(
                "SELECT current_setting('max_connections')::int - count(*) FROM pg_stat_activity"
                " WHERE backend_type = 'client backend'"
            )
        ).fetchone()
    assert row is not None
    return int(row[0]) - 1  # this connection is about to close


async def _lock_waiters(sessions: Sessions, waiters: int) -> None:
    """A session holds an exclusive lock on `users` in an open transaction; `waiters` queue behind it."""
    if not waiters:
        return
    holder = await sessions.connect(app="red-lock-holder", autocommit=False)
    await holder.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
    await sessions.running(waiters, "SELECT count(*) FROM users")
    await sessions.wait_until(
        "SELECT count(*) >= %(waiters)s FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'",
        waiters=waiters,
    )

"""PostgreSQL actions: one state-changing statement, bind values only, cancelled when time is up.

`autocommit: false` (the default) runs the statement in its own transaction on a pooled
connection, with `statement_timeout` and `application_name = 'opsbot:<run id>'` set LOCAL through
`set_config` bind values; it commits only if the statement succeeded, so a failure changes nothing.

`autocommit: true` is for what cannot run in a transaction (VACUUM, CREATE INDEX CONCURRENTLY,
REINDEX CONCURRENTLY): a dedicated connection gets the same settings at session level and is
closed afterwards, so they never leak into a pooled connection.

Either way the server cancels the statement a little before the action's deadline. If the deadline
or a cancellation interrupts us first, psycopg sends the server a cancel request and we close the
connection, so no statement keeps running after the action has returned.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg import AsyncConnection, AsyncCursor
from psycopg.errors import Diagnostic
from psycopg.rows import TupleRow

from bot.actions.result import MAX_ROWS, Outcome, head_text
from bot.probes.base import Call, ProbeFailed
from bot.probes.postgres import PostgresPools, connect_reason, execute_one, transaction
from bot.probes.result import Scalar, json_safe, scalar
from bot.runbooks.steps import PostgresWrite
from bot.targets import PostgresTarget

# The server should give up before our own asyncio timeout fires, so the error is its own.
_SERVER_MARGIN_S = 0.25


async def run_postgres_write(
    step: PostgresWrite, target: PostgresTarget, pools: PostgresPools, call: Call
) -> Outcome:
    binds = {name: call.resolve(value) for name, value in step.binds.items()}
    if step.autocommit:
        async with _dedicated(target) as conn:
            return await _outside_transaction(conn, step, binds, call)
    async with pools.connection(step.target, target, wait_s=call.remaining()) as conn:
        return await _in_transaction(conn, step, binds, call)


async def _in_transaction(
    conn: AsyncConnection[TupleRow], step: PostgresWrite, binds: dict[str, Any], call: Call
) -> Outcome:
    try:
        with _notices(conn) as notices:
            async with transaction(
                conn,
                read_only=False,
                timeout_ms=_server_timeout_ms(call),
                application_name=f"opsbot:{call.run_id}",
            ):
                cur = conn.cursor()
                await execute_one(cur, step.sql, binds)
                outcome = await _outcome(cur)
    except psycopg.errors.QueryCanceled as exc:
        if "statement timeout" in str(exc):
            raise ProbeFailed(
                f"timed out after {call.timeout_s:g}s; the transaction was rolled back", status="timeout"
            ) from None
        raise
    except asyncio.CancelledError:
        # Interrupted mid-protocol: never hand this connection back to the pool for reuse.
        await conn.close()
        raise
    return _with_notices(outcome, notices)


async def _outside_transaction(
    conn: AsyncConnection[TupleRow], step: PostgresWrite, binds: dict[str, Any], call: Call
) -> Outcome:
    with _notices(conn) as notices:
        await conn.execute(
            "SELECT set_config('statement_timeout', %(timeout)s, false),"
            " set_config('application_name', %(app)s, false)",
            {"timeout": str(_server_timeout_ms(call)), "app": f"opsbot:{call.run_id}"},
        )
        cur = conn.cursor()
        try:
            await execute_one(cur, step.sql, binds)
        except psycopg.errors.QueryCanceled as exc:
            if "statement timeout" in str(exc):
                raise ProbeFailed(
                    f"timed out after {call.timeout_s:g}s; the statement was cancelled, and work done"
                    " outside a transaction may remain (e.g. an INVALID index to drop)",
                    status="timeout",
                ) from None
            raise
        outcome = await _outcome(cur)
    return _with_notices(outcome, notices)


@asynccontextmanager
async def _dedicated(target: PostgresTarget) -> AsyncIterator[AsyncConnection[TupleRow]]:
    try:
        conn = await psycopg.AsyncConnection.connect(
            target.dsn.get_secret_value(),
            autocommit=True,
            application_name="opsbot",
            connect_timeout=max(2, math.ceil(target.connect_timeout)),
            # Prepared statements break behind a transaction-pooling PgBouncer.
            prepare_threshold=None,
        )
    except psycopg.OperationalError as exc:
        raise ProbeFailed(f"cannot connect: {connect_reason(exc)}") from None
    try:
        yield conn
    finally:
        await conn.close()


def _server_timeout_ms(call: Call) -> int:
    remaining = call.remaining()
    return max(1, int((remaining - min(_SERVER_MARGIN_S, remaining / 5)) * 1000))


async def _outcome(cur: AsyncCursor[TupleRow]) -> Outcome:
    columns: list[str] = []
    rows: list[list[Any]] = []
    more = False
    if cur.description is not None:
        columns = [column.name for column in cur.description]
        fetched = await cur.fetchmany(MAX_ROWS + 1)
        rows = [[json_safe(cell) for cell in row] for row in fetched[:MAX_ROWS]]
        more = len(fetched) > MAX_ROWS
    values: dict[str, Scalar] = {}
    for position, column in enumerate(columns):
        values.setdefault(column, scalar(rows[0][position]) if rows else None)
    # psycopg says -1 when the command has no row count (VACUUM, CREATE INDEX).
    values["rows_affected"] = cur.rowcount if cur.rowcount >= 0 else None
    return Outcome(values=values, columns=columns, rows=rows, output=cur.statusmessage or "", truncated=more)


@contextmanager
def _notices(conn: AsyncConnection[TupleRow]) -> Iterator[list[str]]:
    """Collect the server's notices (VACUUM VERBOSE's report, 'skipping' notes) while running."""
    collected: list[str] = []

    def keep(diagnostic: Diagnostic) -> None:
        collected.append(f"{diagnostic.severity}: {diagnostic.message_primary}")

    conn.add_notice_handler(keep)
    try:
        yield collected
    finally:
        conn.remove_notice_handler(keep)


def _with_notices(outcome: Outcome, notices: list[str]) -> Outcome:
    if not notices:
        return outcome
    output, cut = head_text("\n".join([*notices, outcome.output]).strip())
    outcome.output = output
    outcome.truncated = outcome.truncated or cut
    return outcome

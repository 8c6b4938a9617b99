"""The audit log: append-only in the database, hash chain verifies, tampering is found."""

from __future__ import annotations

import asyncio
import itertools

import psycopg
import pytest

from bot import audit
from bot.audit import AuditEvent
from bot.store import migrations


@pytest.fixture
async def conn(database_url: str):  # type: ignore[no-untyped-def]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
        await migrations.migrate(connection)
        yield connection


def event(n: int) -> AuditEvent:
    return AuditEvent(actor=f"U{n}", action="test.action", outcome="ok", subject=f"REQ-{n}", details={"n": n})


async def test_chain_verifies_and_links_each_row_to_the_previous(conn: psycopg.AsyncConnection) -> None:  # type: ignore[type-arg]
    records = [await audit.append(conn, event(n)) for n in range(5)]
    assert records[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    report = await audit.verify(conn)
    assert report.ok
    assert report.rows == 5


async def test_rows_cannot_be_updated_or_deleted(conn: psycopg.AsyncConnection) -> None:  # type: ignore[type-arg]
    await audit.append(conn, event(1))
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        await conn.execute("UPDATE audit_events SET outcome = 'denied'")
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        await conn.execute("DELETE FROM audit_events")


async def test_a_row_changed_behind_the_triggers_back_is_found(conn: psycopg.AsyncConnection) -> None:  # type: ignore[type-arg]
    for n in range(4):
        await audit.append(conn, event(n))
    await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update")
    await conn.execute("UPDATE audit_events SET outcome = 'denied' WHERE subject = 'REQ-2'")
    report = await audit.verify(conn)
    assert not report.ok
    row = await (await conn.execute("SELECT id FROM audit_events WHERE subject = 'REQ-2'")).fetchone()
    assert row is not None
    assert report.first_bad_id == row[0]
    assert report.reason == "content changed"


async def test_concurrent_appends_from_many_connections_keep_one_chain(
    database_url: str, conn: psycopg.AsyncConnection
) -> None:  # type: ignore[type-arg]
    async def writer(n: int) -> None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as own:
            for i in range(5):
                await audit.append(own, event(n * 100 + i))

    await asyncio.gather(*(writer(n) for n in range(8)))
    report = await audit.verify(conn)
    assert report.ok
    assert report.rows == 40

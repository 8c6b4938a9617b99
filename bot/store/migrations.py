"""Versioned SQL migrations: `NNNN_name.sql` files applied in order, once, under an advisory lock.

Two replicas starting together both call `migrate`; the advisory lock makes the second wait and
then find nothing to do. A migration file edited after it was applied is refused (checksum).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

# Arbitrary but fixed: every opsbot process must contend for the same lock.
MIGRATION_LOCK_ID = 0x0B5B07_0001

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    """The database holds a migration history that does not match the shipped files."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def shipped_migrations() -> list[Migration]:
    """The migrations packaged with this version of opsbot, in order."""
    found = []
    for entry in resources.files("bot.store").joinpath("migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version: {versions}")
    return found


_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS opsbot_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def migrate(conn: psycopg.AsyncConnection[Any], *, up_to: int | None = None) -> list[Migration]:
    """Apply every shipped migration not yet applied (up to version `up_to` when given, to test one
    migration against data written by the schema before it); return the ones applied now."""
    applied_now: list[Migration] = []
    await conn.set_autocommit(True)
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
    try:
        await conn.execute(_BOOKKEEPING)
        done = await _applied(conn)
        for migration in shipped_migrations():
            if up_to is not None and migration.version > up_to:
                break
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was changed after it was applied"
                    )
                continue
            async with conn.transaction():
                await conn.execute(sql.SQL(migration.sql))  # a shipped file, never input
                await conn.execute(
                    "INSERT INTO opsbot_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            applied_now.append(migration)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
    return applied_now


async def pending(conn: psycopg.AsyncConnection[Any]) -> list[Migration]:
    """Shipped migrations the database has not applied (empty when the schema is current)."""
    exists = await (await conn.execute("SELECT to_regclass('opsbot_migrations') IS NOT NULL")).fetchone()
    done = await _applied(conn) if exists and exists[0] else {}
    return [m for m in shipped_migrations() if m.version not in done]


async def _applied(conn: psycopg.AsyncConnection[Any]) -> dict[int, str]:
    rows = await (await conn.execute("SELECT version, checksum FROM opsbot_migrations")).fetchall()
    return {int(r[0]): str(r[1]) for r in rows}

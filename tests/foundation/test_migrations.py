"""Migrations against a real PostgreSQL: idempotent, safe from two processes at once, tamper-evident."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bot.store import migrations
from bot.store.migrations import MigrationError, shipped_migrations

OPSBOT = str(Path(sys.executable).with_name("opsbot"))


async def test_migrate_twice_applies_once(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        assert [m.version for m in await migrations.pending(conn)] == [
            m.version for m in shipped_migrations()
        ]
        first = await migrations.migrate(conn)
        second = await migrations.migrate(conn)
        assert [m.version for m in first] == [m.version for m in shipped_migrations()]
        assert second == []
        assert await migrations.pending(conn) == []
        rows = await (await conn.execute("SELECT count(*) FROM opsbot_migrations")).fetchone()
        assert rows == (len(shipped_migrations()),)


def test_two_processes_migrating_at_once_apply_each_migration_once(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "OPSBOT_LOG_LEVEL": "warning"}
    procs = [
        subprocess.Popen(
            [OPSBOT, "migrate"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    stdout = "".join(out for out, _ in outputs)
    for migration in shipped_migrations():
        assert stdout.count(f"applied {migration.version:04d}_{migration.name}") == 1, stdout
    assert "schema is current" in stdout
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM opsbot_migrations").fetchone() == (
            len(shipped_migrations()),
        )


async def test_a_migration_whose_file_differs_from_what_was_applied_is_refused(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await migrations.migrate(conn)
        # What the database recorded no longer matches the shipped file, as after editing it.
        await conn.execute("UPDATE opsbot_migrations SET checksum = 'edited' WHERE version = 1")
        with pytest.raises(MigrationError, match=r"0001_.* was changed after it was applied"):
            await migrations.migrate(conn)


def test_shipped_migration_files_are_numbered_without_gaps() -> None:
    versions = [m.version for m in shipped_migrations()]
    assert versions == list(range(1, len(versions) + 1))
    for path in (Path(migrations.__file__).parent / "migrations").iterdir():
        assert path.suffix == ".sql", path.name
        assert path.name[:4].isdigit(), path.name

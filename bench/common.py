"""Shared bits of the benchmarks: real servers on loopback, timing helpers, the results table."""

from __future__ import annotations

import asyncio
import json
import statistics
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import redis

RESULTS = Path(__file__).parent / "results"


def machine_postgres() -> str:
    dsn = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(dsn, connect_timeout=2):
        return dsn


def machine_redis() -> str:
    url = "redis://127.0.0.1:6379/0"
    redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    return url


@asynccontextmanager
async def black_hole() -> AsyncIterator[int]:
    """A TCP server that accepts and never answers: the worst kind of broken target."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def median(values: list[float]) -> float:
    return statistics.median(values)


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    cells = [columns] + [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        print("  ".join(v.ljust(widths[i]) for i, v in enumerate(row)))
        if index == 0:
            print("  ".join("-" * w for w in widths))


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path

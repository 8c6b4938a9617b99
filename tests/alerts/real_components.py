"""Real Prometheus and Alertmanager for tests: the seed rules fire from the sick system's `/metrics`.

    async with real_alerting(system, tmp_path, webhook_url=url, token=t, alerts={"ServiceDown"}) as stack:
        ...

`real_alerting` runs `bot.demo.alerting.alerting_stack` (Debian's `prometheus` and
`prometheus-alertmanager` on free loopback ports, temp storage, 1 s scrape and evaluation, rules with a
2 s `for`, Alertmanager group_wait 1 s and no clustering) and skips the test LOUDLY when a binary is
missing: the reason starts with "NOT TESTED" and tests/conftest.py repeats it in the run's summary.

`CapturingWebhook` is an aiohttp receiver that records what Alertmanager posts (body and
Authorization header), for tests that look at Alertmanager's real payloads without a bot.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.demo.alerting import TEST_TIMINGS, AlertingStack, Timings, alerting_stack, missing_binaries
from bot.demo.system import SickSystem

FIXTURES = Path(__file__).parent / "fixtures"


def require_prometheus() -> None:
    """Skip the calling test, loudly, when Debian's prometheus or prometheus-alertmanager is missing."""
    missing = missing_binaries()
    if missing:
        pytest.skip(
            f"NOT TESTED: real Prometheus/Alertmanager alerts — install Debian's {' and '.join(missing)} "
            "(`make test` as root installs them)"
        )


@asynccontextmanager
async def real_alerting(
    system: SickSystem,
    workdir: Path,
    *,
    webhook_url: str,
    token: str,
    alerts: Collection[str] | None = None,
    ports: tuple[int, int] | None = None,
    timings: Timings = TEST_TIMINGS,
) -> AsyncIterator[AlertingStack]:
    """Prometheus scraping `system`'s backend and Alertmanager posting to `webhook_url` with `token`
    (`ports`: Alertmanager's and Prometheus's, when the bot must know them before they start)."""
    require_prometheus()
    async with alerting_stack(
        workdir=workdir / "alerting",
        metrics_url=system.urls["api"],
        webhook_url=webhook_url,
        token=token,
        alerts=alerts,
        ports=ports,
        timings=timings,
    ) as stack:
        yield stack


@dataclass
class Received:
    authorization: str | None
    body: dict[str, Any]


@dataclass
class CapturingWebhook:
    """Every POST to `url`, in order; `wait_for` blocks until one satisfies a condition."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        async with self._arrived:
            self.received.append(Received(request.headers.get("Authorization"), body))
            self._arrived.notify_all()
        return web.json_response({"status": "ok"})

    async def wait_for(self, condition: Callable[[Received], bool], timeout: float = 60) -> Received:
        async def first() -> Received:
            async with self._arrived:
                while True:
                    for item in self.received:
                        if condition(item):
                            return item
                    await self._arrived.wait()

        return await asyncio.wait_for(first(), timeout)


@pytest.fixture
async def capturing_webhook() -> AsyncIterator[CapturingWebhook]:
    webhook = CapturingWebhook()
    app = web.Application()
    app.router.add_post("/alerts/alertmanager", webhook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    webhook.url = f"http://{host}:{port}/alerts/alertmanager"
    try:
        yield webhook
    finally:
        await runner.cleanup()


@pytest.fixture
async def sick_system(app_db_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[SickSystem]:
    """The simulated system, sick, its backend's `/metrics` counting connections in `app_db_url`."""
    async with SickSystem.running(
        postgres_dsn=app_db_url, redis_url=redis_url, workdir=tmp_path / "sick", seed_schema=False
    ) as system:
        yield system


async def alertmanager_get(stack: AlertingStack, path: str) -> Any:
    """GET Alertmanager's API v2 (`/api/v2/...`) and return its JSON."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(f"{stack.alertmanager_url}/api/v2/{path}") as response,
    ):
        response.raise_for_status()
        return await response.json()


def save_fixture(name: str, body: dict[str, Any]) -> None:
    """Keep a real payload for other tests (A1's payload models parse these)."""
    FIXTURES.mkdir(exist_ok=True)
    (FIXTURES / name).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", "utf-8")

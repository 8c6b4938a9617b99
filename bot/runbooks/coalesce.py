"""Coalescing identical diagnoses: ten people typing `/db connections` cost one set of queries.

Within one process, callers of an identical diagnosis (same runbook, version and params) that is
running or finished within the window share its result. Across replicas, the first to claim the
key runs it and shares the result through the coordinator (Redis); the others wait for it, and
run it themselves only if it does not appear in time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot.coordination import Coordinator
from bot.runbooks.engine import Diagnosis

POLL_SECONDS = 0.05


def coalesce_key(runbook_id: str, version: int, params: dict[str, Any]) -> str:
    canonical = json.dumps([runbook_id, version, params], sort_keys=True, default=str)
    return "diag:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


class DiagnosisCoalescer:
    def __init__(self, coordinator: Coordinator, window_s: float = 5.0) -> None:
        self._coordinator = coordinator
        self._window_s = window_s
        self._inflight: dict[str, asyncio.Future[Diagnosis]] = {}
        self._recent: dict[str, tuple[float, Diagnosis]] = {}

    async def run(
        self, key: str, produce: Callable[[], Awaitable[Diagnosis]], *, wait_s: float
    ) -> tuple[Diagnosis, bool]:
        """The diagnosis for `key` and whether it was shared rather than run for this caller."""
        recent = self._recent.get(key)
        if recent is not None and recent[0] > time.monotonic():
            return recent[1], True
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running), True
        future: asyncio.Future[Diagnosis] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            diagnosis, shared = await self._across_replicas(key, produce, wait_s)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here so an unawaited future does not warn
            raise
        finally:
            self._inflight.pop(key, None)
        future.set_result(diagnosis)
        self._remember(key, diagnosis)
        return diagnosis, shared

    async def _across_replicas(
        self, key: str, produce: Callable[[], Awaitable[Diagnosis]], wait_s: float
    ) -> tuple[Diagnosis, bool]:
        cached = await self._coordinator.cache_get(key)
        if cached is not None:
            return Diagnosis.model_validate_json(cached), True
        if not await self._coordinator.first_delivery("claim:" + key, max(1, int(self._window_s))):
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                await asyncio.sleep(POLL_SECONDS)
                cached = await self._coordinator.cache_get(key)
                if cached is not None:
                    return Diagnosis.model_validate_json(cached), True
        diagnosis = await produce()
        await self._coordinator.cache_set(key, diagnosis.model_dump_json().encode(), self._window_s)
        return diagnosis, False

    def _remember(self, key: str, diagnosis: Diagnosis) -> None:
        now = time.monotonic()
        if len(self._recent) > 256:
            self._recent = {k: v for k, v in self._recent.items() if v[0] > now}
        self._recent[key] = (now + self._window_s, diagnosis)

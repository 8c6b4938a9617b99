"""Background work started by handlers after they ack: kept, logged on failure, awaited at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from typing import Any

from bot.logs import get_logger

log = get_logger(__name__)


class TaskTracker:
    """Holds a reference to every task it starts so none is garbage-collected or lost at shutdown."""

    def __init__(
        self,
        on_change: Callable[[int], None] | None = None,
        on_failure: Callable[[BaseException], Awaitable[None]] | None = None,
    ) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_change = on_change
        self._on_failure = on_failure
        self._closing = False

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        if self._closing:
            coro.close()
            raise RuntimeError("shutting down: no new background work accepted")
        task = asyncio.create_task(self._guarded(coro), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        self._changed()
        return task

    async def _guarded(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Runs in the spawning request's context, so `on_failure` can still tell who asked; a failure
        it was handed is its to log and answer."""
        try:
            return await coro
        except Exception as exc:
            if self._on_failure is None:
                raise
            with suppress(Exception):
                await self._on_failure(exc)
            return None

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._changed()
        if not task.cancelled() and task.exception() is not None:
            log.error("background_task_failed", task=task.get_name(), exc_info=task.exception())

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(len(self._tasks))

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self, grace_seconds: float) -> None:
        """Refuse new work, wait up to `grace_seconds` for running tasks, then cancel the rest."""
        self._closing = True
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
        for task in pending:
            log.warning("background_task_cancelled_at_shutdown", task=task.get_name())
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

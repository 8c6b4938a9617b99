"""GET /ui/events: Server-Sent Events telling pages the workspace changed or an app call was rejected."""

from __future__ import annotations

import json

from aiohttp import web

from localslack.changes import Changes
from localslack.model import JSON

HEARTBEAT_SECONDS = 15.0
RECONNECT_MS = 1000


def _event(name: str, data: JSON) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


class EventStream:
    def __init__(self, changes: Changes) -> None:
        self._changes = changes

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        sub = self._changes.subscribe()
        sent: int | None = None
        try:
            await response.write(f"retry: {RECONNECT_MS}\n\n".encode())
            while not sub.closed:
                for error in sub.drain():
                    await response.write(_event("api_error", error.to_json()))
                if self._changes.version != sent:
                    sent = self._changes.version
                    await response.write(_event("change", {"version": sent}))
                woken = await sub.wait(HEARTBEAT_SECONDS)
                if request.transport is None or request.transport.is_closing():
                    break
                if not woken:
                    await response.write(b": heartbeat\n\n")
        except ConnectionResetError:
            # The page went away between two writes; nothing is left to tell it.
            pass
        finally:
            self._changes.unsubscribe(sub)
        return response

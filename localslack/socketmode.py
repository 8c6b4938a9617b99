"""Socket Mode server side: ws tickets, hello, envelopes awaiting acks by envelope_id, disconnects."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import uuid
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import BaseModel, ConfigDict, ValidationError

from localslack.model import JSON

CONNECT_GRACE = 0.2


class SocketAck(BaseModel):
    """What the app sends back for an envelope."""

    model_config = ConfigDict(extra="ignore")

    envelope_id: str
    payload: JSON | None = None


class SocketHub:
    def __init__(self, app_id: str) -> None:
        self._app_id = app_id
        self._tickets: set[str] = set()
        self._pending: dict[str, asyncio.Future[SocketAck]] = {}
        self.connections: list[web.WebSocketResponse] = []
        self._rr = itertools.count()
        self._changed = asyncio.Event()
        self.received: list[JSON] = []

    def issue_url(self, ws_base: str) -> str:
        ticket = secrets.token_hex(16)
        self._tickets.add(ticket)
        return f"{ws_base}/link/?ticket={ticket}&app_id={self._app_id}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid_ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        hello = {
            "type": "hello",
            "num_connections": len(self.connections) + 1,
            "debug_info": {
                "host": "applink-localslack",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self._app_id},
        }
        self.connections.append(ws)
        self._signal()
        try:
            await ws.send_str(json.dumps(hello))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(msg.data)
        finally:
            if ws in self.connections:
                self.connections.remove(ws)
            self._signal()
        return ws

    def _signal(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _on_text(self, data: str) -> None:
        try:
            raw: Any = json.loads(data)
            ack = SocketAck.model_validate(raw)
        except (ValueError, ValidationError):
            return
        self.received.append(raw)
        future = self._pending.get(ack.envelope_id)
        if future is not None and not future.done():
            future.set_result(ack)

    async def wait_connected(self, count: int = 1, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while len(self.connections) < count:
                await self._changed.wait()

    async def deliver(
        self,
        envelope_type: str,
        payload: JSON,
        *,
        accepts_response_payload: bool,
        retry_attempt: int,
        retry_reason: str,
        window: float,
    ) -> SocketAck | None:
        """Sends one envelope to one connection; None when nothing acked within `window` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + window
        # A short grace covers a client that is mid-handshake; with no app connected at all the
        # delivery fails fast and the Events API retry schedule takes over.
        with contextlib.suppress(TimeoutError):
            await self.wait_connected(1, min(CONNECT_GRACE, window))
        if not self.connections:
            return None
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }
        ws = self.connections[next(self._rr) % len(self.connections)]
        future: asyncio.Future[SocketAck] = loop.create_future()
        self._pending[envelope_id] = future
        try:
            await ws.send_str(json.dumps(envelope))
            async with asyncio.timeout_at(deadline):
                return await future
        except (TimeoutError, ConnectionError):
            return None
        finally:
            self._pending.pop(envelope_id, None)

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Asks every client to reconnect, as Slack does before it recycles a socket."""
        message = json.dumps(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-localslack"}}
        )
        for ws in list(self.connections):
            with contextlib.suppress(ConnectionError):
                await ws.send_str(message)

    async def close(self) -> None:
        for ws in list(self.connections):
            await ws.close()
        for future in self._pending.values():
            future.cancel()

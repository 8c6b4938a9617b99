"""Hands payloads to the app over HTTP (signed) or Socket Mode, with Slack's ack window and event retries."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp

from localslack.core import Core
from localslack.model import JSON, Ephemeral, Message, View
from localslack.recorder import DeliveryAttempt
from localslack.responses import parse_ack_body
from localslack.signing import Tamper, signed_headers

USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


@dataclass
class Delivery:
    """What a driver action produced: the app's answer plus the ids the action minted."""

    kind: str
    transport: str
    status: int | None = None
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    ack: JSON | None = None
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    trigger_id: str | None = None
    response_url: str | None = None
    event_id: str | None = None
    ts: str | None = None
    message: Message | None = None
    view: View | None = None
    view_errors: dict[str, str] | None = None
    posted: Message | Ephemeral | None = None
    user_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class _Sent:
    url: str
    body: bytes
    headers: dict[str, str]
    kind: str


class Transport:
    def __init__(self, core: Core) -> None:
        self._core = core
        self.request_url: str | None = None
        self._session: aiohttp.ClientSession | None = None
        self._last: _Sent | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        # trust_env=False: a developer's HTTP(S)_PROXY must never capture loopback deliveries.
        self._session = aiohttp.ClientSession(trust_env=False)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    @property
    def socket_mode(self) -> bool:
        return self.request_url is None

    async def send(
        self, kind: str, payload: JSON, delivery: Delivery, *, tamper: Tamper | None = None
    ) -> None:
        """Delivers once within the ack window; failed events keep being retried in the background."""
        if self.socket_mode:
            delivery.transport = "socket"
            accepts = kind == "slash_commands" or (
                kind == "interactive" and payload.get("type") != "block_actions"
            )
            await self._socket_once(kind, payload, accepts, delivery, retry=0, reason="")
        else:
            delivery.transport = "http"
            body, content_type = _encode(kind, payload)
            await self._http_once(kind, body, content_type, delivery, retry=0, reason="", tamper=tamper)
        if kind == "events_api" and not delivery.ok and delivery.headers.get("X-Slack-No-Retry") != "1":
            task = asyncio.create_task(self._retry(kind, payload, delivery, tamper))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _retry(self, kind: str, payload: JSON, delivery: Delivery, tamper: Tamper | None) -> None:
        for n, delay in enumerate(self._core.timing.retry_delays, start=1):
            await asyncio.sleep(delay)
            reason = delivery.attempts[-1].reason or "http_error"
            if delivery.transport == "socket":
                await self._socket_once(kind, payload, False, delivery, retry=n, reason=reason)
            else:
                body, content_type = _encode(kind, payload)
                await self._http_once(
                    kind, body, content_type, delivery, retry=n, reason=reason, tamper=tamper
                )
            if delivery.ok or delivery.headers.get("X-Slack-No-Retry") == "1":
                return

    async def _socket_once(
        self, kind: str, payload: JSON, accepts: bool, delivery: Delivery, *, retry: int, reason: str
    ) -> None:
        attempt = DeliveryAttempt(kind=kind, transport="socket", retry_num=retry)
        delivery.attempts.append(attempt)
        self._core.recorder.deliveries.append(attempt)
        ack = await self._core.sockets.deliver(
            kind,
            payload,
            accepts_response_payload=accepts,
            retry_attempt=retry,
            retry_reason=reason,
            window=self._core.timing.ack_timeout,
        )
        if ack is None:
            attempt.reason = "timeout"
            delivery.status, delivery.ack, delivery.body = None, None, ""
            return
        attempt.status = delivery.status = 200
        delivery.ack = ack.payload
        delivery.body = json.dumps(ack.payload) if ack.payload is not None else ""

    async def _http_once(
        self,
        kind: str,
        body: bytes,
        content_type: str,
        delivery: Delivery,
        *,
        retry: int,
        reason: str,
        tamper: Tamper | None,
    ) -> None:
        assert self.request_url is not None
        headers = {
            "Content-Type": content_type,
            "User-Agent": USER_AGENT,
            **signed_headers(self._core.state.app.signing_secret, body, tamper=tamper),
        }
        if retry:
            headers["X-Slack-Retry-Num"] = str(retry)
            headers["X-Slack-Retry-Reason"] = reason
        self._last = _Sent(url=self.request_url, body=body, headers=headers, kind=kind)
        attempt = DeliveryAttempt(kind=kind, transport="http", retry_num=retry, headers=headers)
        delivery.attempts.append(attempt)
        self._core.recorder.deliveries.append(attempt)
        await self._post(self._last, delivery, attempt)

    async def _post(self, sent: _Sent, delivery: Delivery, attempt: DeliveryAttempt) -> None:
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=self._core.timing.ack_timeout)
        try:
            async with self._session.post(
                sent.url, data=sent.body, headers=sent.headers, timeout=timeout, allow_redirects=False
            ) as resp:
                text = await resp.text()
                attempt.status = delivery.status = resp.status
                delivery.body, delivery.headers = text, dict(resp.headers)
                if not 200 <= resp.status < 300:
                    attempt.reason = "too_many_redirects" if 300 <= resp.status < 400 else "http_error"
                delivery.ack = None
                if 200 <= resp.status < 300:
                    delivery.ack = parse_ack_body(text, resp.headers.get("Content-Type", ""))
        except TimeoutError:
            attempt.reason = "http_timeout"
            delivery.status, delivery.body, delivery.headers, delivery.ack = None, "", {}, None
        except aiohttp.ClientError:
            attempt.reason = "connection_failed"
            delivery.status, delivery.body, delivery.headers, delivery.ack = None, "", {}, None

    async def replay_last(self, *, to: str | None = None) -> Delivery:
        """Re-sends the previous HTTP request byte for byte (same timestamp and signature)."""
        if self._last is None:
            raise RuntimeError("nothing has been delivered over HTTP yet")
        sent = (
            self._last
            if to is None
            else _Sent(url=to, body=self._last.body, headers=self._last.headers, kind=self._last.kind)
        )
        delivery = Delivery(kind=self._last.kind, transport="http")
        attempt = DeliveryAttempt(
            kind=self._last.kind, transport="http", retry_num=0, headers=self._last.headers
        )
        delivery.attempts.append(attempt)
        self._core.recorder.deliveries.append(attempt)
        await self._post(sent, delivery, attempt)
        return delivery


def _encode(kind: str, payload: JSON) -> tuple[bytes, str]:
    """Commands are plain forms, interactions a form with one JSON `payload` field, events raw JSON."""
    if kind == "slash_commands":
        return urlencode(
            {k: str(v) for k, v in payload.items()}
        ).encode(), "application/x-www-form-urlencoded"
    if kind == "interactive":
        return urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"
    return json.dumps(payload).encode(), "application/json"

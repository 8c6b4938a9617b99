"""The /api/<method> endpoint: argument merging, auth, faults, dispatch and recording."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from localslack.core import Core
from localslack.errors import SlackError
from localslack.limits import PACED_PER_CHANNEL
from localslack.model import JSON
from localslack.recorder import ApiCall
from localslack.state import NotFound
from localslack.webapi.registry import METHODS, Call


async def merged_args(request: web.Request) -> dict[str, Any]:
    """Query string, then form or JSON body: the SDK sends some POST arguments only in the query."""
    args: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return args
    ctype = request.content_type
    if ctype == "application/json":
        raw = await request.read()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                raise SlackError("invalid_json") from None
            if not isinstance(body, dict):
                raise SlackError("invalid_json")
            args.update(body)
    elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        args.update({k: v for k, v in form.items() if isinstance(v, str)})
    return args


def _token(request: web.Request, args: dict[str, Any]) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth.removeprefix("Bearer ").strip()
    token = args.pop("token", None)
    return str(token) if token else None


class WebApi:
    def __init__(self, core: Core) -> None:
        self._core = core

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        token: str | None = None
        args: dict[str, Any] = {}
        headers: dict[str, str] = {}
        status = 200
        try:
            args = await merged_args(request)
            token = _token(request, args)
            body, status, headers = self._dispatch(method, token, args)
        except SlackError as exc:
            body = _error_body(exc)
        late = self._core.faults.delay_after(method)
        if late:
            await asyncio.sleep(late)
        self._core.recorder.record_call(
            ApiCall(
                method=method,
                args=args,
                at=time.time(),
                status=status,
                ok=bool(body.get("ok")),
                error=body.get("error"),
                token=token,
            )
        )
        self._core.changes.api_result(method, body)
        return web.json_response(body, status=status, headers=headers)

    def _dispatch(
        self, method: str, token: str | None, args: dict[str, Any]
    ) -> tuple[JSON, int, dict[str, str]]:
        app = self._core.state.app
        spec = METHODS.get(method)
        if spec is None:
            return {"ok": False, "error": "unknown_method", "req_method": method}, 200, {}
        if not token:
            raise SlackError("not_authed")
        kind = "bot" if token == app.bot_token else "app" if token == app.app_token else None
        if kind is None:
            raise SlackError("invalid_auth")
        if kind != spec.token:
            raise SlackError("not_allowed_token_type")
        headers = {"x-oauth-scopes": ",".join(app.scopes)} if kind == "bot" else {}
        paced = self._channel_id(args) if method in PACED_PER_CHANNEL else None
        fault = self._core.faults.check(method, paced)
        if fault is not None:
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            return dict(fault.body), fault.status, headers
        try:
            result = spec.handler(Call(core=self._core, method=method, args=args))
        except SlackError as exc:
            return _error_body(exc), 200, headers
        return {"ok": True, **result}, 200, headers

    def _channel_id(self, args: dict[str, Any]) -> str | None:
        """The channel a call names, by id whether it was written as an id, a name or a #name, so one
        channel is one per-channel budget; a user id (the bot's DM) or an unknown name is its own key."""
        ref = args.get("channel")
        if not isinstance(ref, str) or not ref:
            return None
        try:
            return self._core.state.channel(ref).id
        except NotFound:
            return ref


def _error_body(exc: SlackError) -> JSON:
    body: JSON = {"ok": False, "error": exc.code}
    if exc.errors:
        body["errors"] = exc.errors
    if exc.messages:
        body["response_metadata"] = {"messages": exc.messages}
    return body

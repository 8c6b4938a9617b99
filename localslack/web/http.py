"""JSON endpoint plumbing: Slack-style `ok`/`error` answers, request bodies, input and lookup errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from localslack.model import JSON
from localslack.state import NotFound

M = TypeVar("M", bound=BaseModel)
JsonHandler = Callable[[web.Request], Awaitable[JSON]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class UiError(Exception):
    """An `ok: false` answer; status 200 is for refusals the Slack client would show the user."""

    def __init__(self, error: str, status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra


def json_endpoint(handler: JsonHandler, *, after: Callable[[], None] | None = None) -> Handler:
    """Wraps a handler returning the answer's fields; `after` runs once the request is done, even failed."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            status, body = 200, {"ok": True, **await handler(request)}
        except UiError as exc:
            status, body = exc.status, {"ok": False, "error": exc.error, **exc.extra}
        except NotFound as exc:
            status, body = 404, {"ok": False, "error": exc.code}
        finally:
            if after is not None:
                after()
        return web.json_response(body, status=status)

    return handle


async def unknown_endpoint(request: web.Request) -> web.StreamResponse:
    return web.json_response({"ok": False, "error": "unknown_endpoint"}, status=404)


async def read_body(request: web.Request, model: type[M]) -> M:
    raw = await request.read()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        problems = exc.errors(include_url=False)
        if any(p["type"] == "json_invalid" for p in problems):
            raise UiError("invalid_json", 400) from None
        detail = "; ".join(f"{'.'.join(map(str, p['loc'])) or 'body'}: {p['msg']}" for p in problems)
        raise UiError("invalid_arguments", 400, detail=detail) from None


def query(request: web.Request, name: str) -> str:
    value = request.query.get(name, "")
    if not value:
        raise UiError(f"missing_{name}", 400)
    return value

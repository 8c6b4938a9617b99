"""response_url endpoints: issued per interaction, limited in uses and lifetime, posting to the workspace."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import ValidationError

from localslack.config import Timing
from localslack.errors import SlackError
from localslack.model import Ephemeral, Message
from localslack.responses import ResponseTarget, apply_response
from localslack.state import NotFound, Workspace


@dataclass
class IssuedUrl:
    target: ResponseTarget
    issued: float = field(default_factory=time.monotonic)
    uses: int = 0
    results: list[Message | Ephemeral | None] = field(default_factory=list)


class ResponseUrls:
    """Paths look like Slack's (/hooks/commands/T../N/secret) but live on the emulator's own server."""

    def __init__(self, state: Workspace, timing: Timing) -> None:
        self._state = state
        self._timing = timing
        self.issued: dict[str, IssuedUrl] = {}
        self._seq = 0

    def issue(self, kind: str, target: ResponseTarget) -> str:
        self._seq += 1
        path = f"/hooks/{kind}/{self._state.team_id}/{self._seq}/{secrets.token_urlsafe(18)}"
        self.issued[path] = IssuedUrl(target=target)
        return self._state.public_base + path

    async def handle(self, request: web.Request) -> web.Response:
        entry = self.issued.get(request.path)
        if entry is None:
            return web.Response(status=404, text="no_service")
        if time.monotonic() - entry.issued > self._timing.response_url_ttl:
            return web.Response(status=404, text="expired_url")
        if entry.uses >= self._timing.response_url_uses:
            return web.Response(status=404, text="used_url")
        raw = await request.read()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        entry.uses += 1
        try:
            entry.results.append(apply_response(self._state, entry.target, body))
        except ValidationError:
            return web.Response(status=400, text="invalid_payload")
        except (SlackError, NotFound) as exc:
            return web.Response(status=404 if isinstance(exc, NotFound) else 400, text=exc.code)
        return web.Response(status=200, text="ok")

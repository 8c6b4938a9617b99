"""response_url endpoints: issued per interaction, limited in uses and lifetime, posting to the workspace."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import ValidationError

from localslack.changes import Changes
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

    def __init__(self, state: Workspace, timing: Timing, changes: Changes) -> None:
        self._state = state
        self._timing = timing
        self._changes = changes
        self.issued: dict[str, IssuedUrl] = {}
        self._seq = 0

    def issue(self, kind: str, target: ResponseTarget) -> str:
        self._seq += 1
        path = f"/hooks/{kind}/{self._state.team_id}/{self._seq}/{secrets.token_urlsafe(18)}"
        self.issued[path] = IssuedUrl(target=target)
        return self._state.public_base + path

    async def handle(self, request: web.Request) -> web.Response:
        status, text, detail = await self._apply(request)
        self._changes.bump()
        if status != 200:
            self._changes.report("response_url", text, detail)
        return web.Response(status=status, text=text)

    async def _apply(self, request: web.Request) -> tuple[int, str, str]:
        """(status, Slack's answer text, why it was refused) for one post to an issued URL."""
        entry = self.issued.get(request.path)
        if entry is None:
            return 404, "no_service", "the response_url was never issued"
        if time.monotonic() - entry.issued > self._timing.response_url_ttl:
            return 404, "expired_url", f"the response_url expired after {self._timing.response_url_ttl:g} s"
        if entry.uses >= self._timing.response_url_uses:
            return 404, "used_url", f"a response_url can be used {self._timing.response_url_uses} times"
        raw = await request.read()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 400, "invalid_payload", "the body is not JSON"
        if not isinstance(body, dict):
            return 400, "invalid_payload", "the body is not a JSON object"
        entry.uses += 1
        try:
            entry.results.append(apply_response(self._state, entry.target, body))
        except ValidationError as exc:
            return 400, "invalid_payload", str(exc)
        except (SlackError, NotFound) as exc:
            detail = "; ".join(exc.messages or exc.errors or [])
            return (404 if isinstance(exc, NotFound) else 400), exc.code, detail
        return 200, "ok", ""

"""The page, its static assets and file downloads for the browser (which cannot send the bot's token)."""

from __future__ import annotations

import asyncio
import re
from importlib import resources
from urllib.parse import quote

from aiohttp import web

from localslack.state import Workspace

_STATIC = resources.files("localslack") / "static"
_ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(html|js|css|svg)$")
_CONTENT_TYPES = {"html": "text/html", "js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
# Everything the page loads comes from this server: the demo promises nothing leaves the machine.
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


async def _asset(name: str) -> web.Response:
    path = _STATIC / name
    if not _ASSET_NAME.match(name) or not path.is_file():
        return web.Response(status=404, text="not_found")
    body = await asyncio.to_thread(path.read_bytes)
    return web.Response(
        body=body,
        content_type=_CONTENT_TYPES[name.rpartition(".")[2]],
        charset="utf-8",
        headers={
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": _CSP,
        },
    )


async def page(request: web.Request) -> web.Response:
    return await _asset("index.html")


async def static(request: web.Request) -> web.Response:
    return await _asset(request.match_info["name"])


class FileDownloads:
    def __init__(self, state: Workspace) -> None:
        self._state = state

    async def download(self, request: web.Request) -> web.Response:
        """Always an attachment: an uploaded .html must not run as a page of this origin."""
        file = self._state.files.get(request.match_info["file_id"])
        if file is None or not file.completed:
            return web.Response(status=404, text="file_not_found")
        return web.Response(
            body=file.content,
            content_type=file.mimetype,
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(file.name)}",
                "X-Content-Type-Options": "nosniff",
            },
        )

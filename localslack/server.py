"""The aiohttp application: the Web API, uploads, downloads, response_urls, Socket Mode and the web client."""

from __future__ import annotations

from aiohttp import web

from localslack.core import Core
from localslack.driver import Driver
from localslack.web import ui_routes
from localslack.webapi import WebApi
from localslack.webapi.files import FileEndpoints

MAX_UPLOAD_BYTES = 100 * 1024 * 1024


def build_app(core: Core, driver: Driver) -> web.Application:
    api = WebApi(core)
    files = FileEndpoints(core)
    app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
    app.add_routes(
        [
            web.route("*", "/api/{method}", api.handle),
            web.post("/upload/v1/{key}", files.upload),
            web.get("/files/{file_id}/{name}", files.download),
            web.post("/hooks/{tail:.+}", core.response_urls.handle),
            web.get("/link/", core.sockets.handle),
            web.get("/link", core.sockets.handle),
            *ui_routes(core, driver),
        ]
    )
    return app

"""The web client's route table: the page, /static assets, /ui/api endpoints, /ui/events and /ui/files."""

from __future__ import annotations

from aiohttp import web

from localslack.core import Core
from localslack.driver import Driver
from localslack.web import assets
from localslack.web.actions import Actions
from localslack.web.context import UiContext
from localslack.web.http import Handler, JsonHandler, json_endpoint, unknown_endpoint
from localslack.web.reads import Reads
from localslack.web.stream import EventStream


def ui_routes(core: Core, driver: Driver) -> list[web.RouteDef]:
    ctx = UiContext(core=core, driver=driver)
    reads, actions = Reads(ctx), Actions(ctx)
    files = assets.FileDownloads(core.state)

    def acting(handler: JsonHandler) -> Handler:
        # Even a refused action may have changed something (a view's state); pages re-read either way.
        return json_endpoint(handler, after=core.changes.bump)

    return [
        web.get("/", assets.page),
        web.get("/static/{name}", assets.static),
        web.get("/ui/files/{file_id}/{name}", files.download),
        web.get("/ui/events", EventStream(core.changes).handle),
        web.get("/ui/api/bootstrap", json_endpoint(reads.bootstrap)),
        web.get("/ui/api/channels/{channel_id}/messages", json_endpoint(reads.messages)),
        web.get("/ui/api/channels/{channel_id}/thread/{ts}", json_endpoint(reads.thread)),
        web.get("/ui/api/views", json_endpoint(reads.views)),
        web.post("/ui/api/command", acting(actions.command)),
        web.post("/ui/api/message", acting(actions.message)),
        web.post("/ui/api/click", acting(actions.click)),
        web.post("/ui/api/views/{view_id}/submit", acting(actions.submit_view)),
        web.post("/ui/api/views/{view_id}/close", acting(actions.close_view)),
        web.post("/ui/api/reactions", acting(actions.reaction)),
        web.post("/ui/api/pins", acting(actions.pin)),
        web.post("/ui/api/join", acting(actions.join)),
        web.route("*", "/ui/api/{tail:.*}", unknown_endpoint),
    ]

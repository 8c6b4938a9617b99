"""The files_upload_v2 flow: upload URL issuance, the raw byte upload, completion and download."""

from __future__ import annotations

import secrets

from aiohttp import web

from localslack.core import Core
from localslack.errors import SlackError
from localslack.model import JSON, File
from localslack.webapi.registry import Call, api_method


@api_method("files.getUploadURLExternal")
def get_upload_url(call: Call) -> JSON:
    filename = call.need("filename")
    length = call.number("length", 0, low=0)
    if length <= 0:
        raise SlackError("invalid_arguments", messages=["[ERROR] length must be greater than 0"])
    file = File(id=call.state.ids.new("F"), name=filename, title=filename, user=call.actor, size=length)
    key = secrets.token_urlsafe(24)
    call.state.files[file.id] = file
    call.state.upload_keys[key] = file.id
    return {"upload_url": f"{call.core.http_base}/upload/v1/{key}", "file_id": file.id}


@api_method("files.completeUploadExternal")
def complete_upload(call: Call) -> JSON:
    items = call.structured("files")
    if not isinstance(items, list) or not items:
        raise SlackError("invalid_arguments", messages=["[ERROR] files must be a non-empty array"])
    files: list[File] = []
    for item in items:
        file = call.state.files.get(str(item.get("id"))) if isinstance(item, dict) else None
        if file is None or not file.uploaded or file.completed:
            raise SlackError("file_not_found")
        if item.get("title"):
            file.title = str(item["title"])
        files.append(file)
    refs = [c for c in (call.get("channels") or "").split(",") if c]
    single = call.get("channel_id")
    if not refs and single:
        refs = [single]
    channels = []
    for ref in refs:
        ch = call.state.channel(ref)
        if ch.is_private and call.actor not in ch.members:
            raise SlackError("channel_not_found")
        if call.actor not in ch.members:
            raise SlackError("not_in_channel")
        channels.append(ch)
    thread_ts = call.get("thread_ts") or None
    for ch in channels:
        if thread_ts is not None and thread_ts not in ch.messages:
            raise SlackError("thread_not_found")
    for file in files:
        file.completed = True
        file.url_private = f"{call.core.http_base}/files/{file.id}/{file.name}"
    for ch in channels:
        for file in files:
            file.channels.append(ch.id)
        call.state.add_message(
            ch, user=call.actor, text=call.get("initial_comment") or "", files=files, thread_ts=thread_ts
        )
    return {"files": [f.to_api() for f in files]}


@api_method("files.info")
def files_info(call: Call) -> JSON:
    file = call.state.files.get(call.need("file", "file_not_found"))
    if file is None or not file.completed:
        raise SlackError("file_not_found")
    return {"file": file.to_api(), "content": file.content.decode("utf-8", "replace")}


class FileEndpoints:
    """Plain HTTP endpoints outside /api: the upload target and the url_private download."""

    def __init__(self, core: Core) -> None:
        self._core = core

    async def upload(self, request: web.Request) -> web.Response:
        state = self._core.state
        file_id = state.upload_keys.pop(request.match_info["key"], None)
        if file_id is None:
            return web.Response(status=404, text="upload_url_not_found")
        file = state.files[file_id]
        file.content = await request.read()
        file.size = len(file.content)
        file.uploaded = True
        return web.Response(status=200, text=f"OK - {file.size}")

    async def download(self, request: web.Request) -> web.Response:
        state = self._core.state
        if request.headers.get("Authorization") != f"Bearer {state.app.bot_token}":
            return web.Response(status=403, text="invalid_auth")
        file = state.files.get(request.match_info["file_id"])
        if file is None or not file.completed:
            return web.Response(status=404, text="file_not_found")
        return web.Response(body=file.content, content_type=file.mimetype)

"""Cursor pagination over long threads and channels, and the files_upload_v2 flow."""

from __future__ import annotations

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from localslack import LocalSlack


async def test_replies_paginate_a_2500_message_thread_oldest_first(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    ch = slack.channel("#incident-response")
    parent = slack.state.add_message(ch, user="U0ALICE", text="parent")
    for i in range(2500):
        slack.state.add_message(ch, user="U0BOB", text=f"reply {i}", thread_ts=parent.ts)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        resp = await client.conversations_replies(channel=ch.id, ts=parent.ts, limit=700, cursor=cursor)
        seen += [m["text"] for m in resp["messages"]]
        pages += 1
        cursor = resp["response_metadata"]["next_cursor"]
        assert resp["has_more"] is bool(cursor)
        if not cursor:
            break
    assert pages == 4
    assert seen == ["parent"] + [f"reply {i}" for i in range(2500)]
    first = await client.conversations_replies(channel=ch.id, ts=parent.ts)
    assert len(first["messages"]) == 1000
    assert first["messages"][0]["reply_count"] == 2500


async def test_history_pages_newest_first_with_window(slack: LocalSlack, client: AsyncWebClient) -> None:
    ch = slack.channel("#general")
    msgs = [slack.state.add_message(ch, user="U0CAROL", text=str(i)) for i in range(1234)]
    seen: list[str] = []
    cursor = None
    while True:
        resp = await client.conversations_history(channel=ch.id, limit=100, cursor=cursor)
        seen += [m["text"] for m in resp["messages"]]
        cursor = resp["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert seen == [str(i) for i in reversed(range(1234))]

    window = await client.conversations_history(channel=ch.id, oldest=msgs[10].ts, latest=msgs[20].ts)
    assert [m["text"] for m in window["messages"]] == [str(i) for i in range(19, 10, -1)]
    inclusive = await client.conversations_history(
        channel=ch.id, oldest=msgs[10].ts, latest=msgs[20].ts, inclusive=True
    )
    assert [m["text"] for m in inclusive["messages"]] == [str(i) for i in range(20, 9, -1)]
    capped = await client.conversations_history(channel=ch.id, limit=5000)
    assert len(capped["messages"]) == 999
    with pytest.raises(SlackApiError) as info:
        await client.conversations_history(channel=ch.id, cursor="bm90LWEtY3Vyc29y")
    assert info.value.response["error"] == "invalid_cursor"


async def test_replies_errors(slack: LocalSlack, client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as info:
        await client.conversations_replies(channel="C0GENERAL", ts="123.456")
    assert info.value.response["error"] == "thread_not_found"


async def test_files_upload_v2_shares_into_a_thread(slack: LocalSlack, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel="#incident-response", text="timeline")
    content = "10:02 db down\n10:05 failover\n" * 100
    resp = await client.files_upload_v2(
        channel="C0INCIDENT",
        thread_ts=parent["ts"],
        content=content,
        filename="timeline.txt",
        title="Incident timeline",
        initial_comment="Here is the timeline",
    )
    file_id = resp["file"]["id"]
    assert resp["file"]["title"] == "Incident timeline"
    assert slack.file_content(file_id) == content.encode()
    [shared] = slack.files_in("#incident-response")
    assert shared.id == file_id
    reply = slack.last_reply("#incident-response", parent["ts"])
    assert reply is not None
    assert reply.text == "Here is the timeline"
    assert [f.id for f in reply.files] == [file_id]

    async with (
        aiohttp.ClientSession(trust_env=False) as http,
        http.get(shared.url_private, headers={"Authorization": f"Bearer {slack.bot_token}"}) as download,
    ):
        assert download.status == 200
        assert await download.read() == content.encode()
    info = await client.files_info(file=file_id)
    assert info["file"]["size"] == len(content.encode())


async def test_files_upload_v2_multiple_files_into_channel(slack: LocalSlack, client: AsyncWebClient) -> None:
    resp = await client.files_upload_v2(
        channel="C0GENERAL",
        file_uploads=[
            {"content": b"\x89PNG fake", "filename": "graph.png", "title": "Graph"},
            {"content": "a,b\n1,2\n", "filename": "data.csv"},
        ],
    )
    assert len(resp["files"]) == 2
    msg = slack.last_message("#general")
    assert msg is not None
    assert [f.name for f in msg.files] == ["graph.png", "data.csv"]
    assert slack.file_content(msg.files[0].id) == b"\x89PNG fake"


async def test_complete_upload_rejects_unknown_file(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as info:
        await client.files_completeUploadExternal(
            files=[{"id": "F404", "title": "x"}], channel_id="C0GENERAL"
        )
    assert info.value.response["error"] == "file_not_found"
    url = await client.files_getUploadURLExternal(filename="x.txt", length=3)
    with pytest.raises(SlackApiError) as info:
        await client.files_completeUploadExternal(files=[{"id": url["file_id"]}], channel_id="C0GENERAL")
    assert info.value.response["error"] == "file_not_found"

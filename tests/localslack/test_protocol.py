"""Slack-side protocol rules without bolt: signing, encodings, retries, response_url and trigger limits."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from localslack import LocalSlack, Timing

from .conftest import serve_handler


class Recording:
    """A bare app endpoint that records requests and answers from a script."""

    def __init__(self, *answers: web.Response) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._answers = list(answers)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        return self._answers.pop(0) if self._answers else web.Response(status=200)


async def test_requests_are_signed_and_encoded_like_slack(slack: LocalSlack) -> None:
    app = Recording()
    async with serve_handler(app.handle) as url:
        slack.request_url = url
        await slack.slash("dave", "#general", "/incident   status  ")
        msg = slack.state.add_message(slack.channel("#general"), user="U0ALICE", text="hi")
        await slack.react("dave", msg, "wave")
    verifier = SignatureVerifier(slack.signing_secret)
    for headers, body in app.requests:
        assert verifier.is_valid(
            body=body, timestamp=headers["X-Slack-Request-Timestamp"], signature=headers["X-Slack-Signature"]
        )
    (slash_headers, slash_body), (event_headers, event_body) = app.requests
    assert slash_headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(slash_body.decode(), keep_blank_values=True).items()}
    assert form["command"] == "/incident"
    assert form["text"] == "status"
    assert form["user_id"] == "U0DAVE"
    assert form["trigger_id"]
    assert form["response_url"].startswith(slack.url + "/hooks/commands/T0OPSBOT/")
    assert event_headers["Content-Type"] == "application/json"
    envelope = json.loads(event_body)
    assert envelope["type"] == "event_callback"
    assert envelope["event"]["type"] == "reaction_added"
    assert envelope["event"]["item"] == {"type": "message", "channel": "C0GENERAL", "ts": msg.ts}
    assert envelope["authorizations"][0]["user_id"] == slack.bot_user_id


async def test_interactions_are_one_payload_field(slack: LocalSlack, client: AsyncWebClient) -> None:
    app = Recording()
    blocks = [
        {
            "type": "actions",
            "elements": [
                {
                    "type": "static_select",
                    "action_id": "sev",
                    "options": [
                        {"text": {"type": "plain_text", "text": "P0"}, "value": "p0"},
                        {"text": {"type": "plain_text", "text": "P1"}, "value": "p1"},
                    ],
                }
            ],
        }
    ]
    ts = (await client.chat_postMessage(channel="C0GENERAL", text="pick", blocks=blocks))["ts"]
    async with serve_handler(app.handle) as url:
        slack.request_url = url
        await slack.click("carol", slack.message("#general", ts), "sev", "p1")
    [(_, body)] = app.requests
    fields = parse_qs(body.decode())
    assert list(fields) == ["payload"]
    payload = json.loads(fields["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["actions"][0]["selected_option"]["value"] == "p1"
    block_id = payload["actions"][0]["block_id"]
    assert payload["state"]["values"][block_id]["sev"]["selected_option"]["value"] == "p1"
    assert payload["message"]["ts"] == ts


async def test_failed_event_delivery_is_retried_until_2xx(slack: LocalSlack) -> None:
    app = Recording(web.Response(status=500), web.Response(status=503))
    async with serve_handler(app.handle) as url:
        slack.request_url = url
        d = await slack.send_event({"type": "app_home_opened", "user": "U0ALICE", "tab": "home"})
        assert d.status == 500
        await slack.wait_for(lambda: d.ok)
    nums = [(h.get("X-Slack-Retry-Num"), h.get("X-Slack-Retry-Reason")) for h, _ in app.requests]
    assert nums == [(None, None), ("1", "http_error"), ("2", "http_error")]
    assert len({json.loads(b)["event_id"] for _, b in app.requests}) == 1


async def test_no_retry_header_stops_retries(slack: LocalSlack) -> None:
    app = Recording(web.Response(status=500, headers={"X-Slack-No-Retry": "1"}))
    async with serve_handler(app.handle) as url:
        slack.request_url = url
        d = await slack.send_event({"type": "app_home_opened", "user": "U0ALICE"})
        await asyncio.sleep(0.4)
    assert d.status == 500
    assert len(app.requests) == 1


async def test_retries_give_up_after_three(slack: LocalSlack) -> None:
    app = Recording(*[web.Response(status=500) for _ in range(10)])
    async with serve_handler(app.handle) as url:
        slack.request_url = url
        d = await slack.send_event({"type": "app_home_opened", "user": "U0ALICE"})
        await slack.wait_for(lambda: len(d.attempts) == 4)
        await asyncio.sleep(0.3)
    assert len(app.requests) == 4
    assert not d.ok


async def test_unsubscribed_events_and_channels_without_the_bot_are_not_sent(slack: LocalSlack) -> None:
    app = Recording()
    async with serve_handler(app.handle) as url:
        slack.request_url = url
        elsewhere = slack.state.create_channel("elsewhere", "U0ALICE")
        d = await slack.post("alice", elsewhere, "bot can't see this")
        assert d.user_error == "not_subscribed"
        d = await slack.post("alice", "#general", "hello <@U0OPSBOT>")
        assert d.ok
    kinds = [json.loads(b)["event"]["type"] for _, b in app.requests]
    assert kinds == ["message", "app_mention"]


async def test_post_emits_thread_reply_events(slack: LocalSlack) -> None:
    app = Recording()
    async with serve_handler(app.handle) as url:
        slack.request_url = url
        parent = await slack.post("alice", "#incident-response", "db is down")
        reply = await slack.post("bob", "#incident-response", "looking", thread_ts=parent.ts)
    assert parent.ts
    assert reply.ts
    assert parent.message
    assert reply.message
    event = json.loads(app.requests[1][1])["event"]
    assert event["thread_ts"] == parent.ts
    assert event["parent_user_id"] == "U0ALICE"
    assert event["ts"] == reply.ts
    assert slack.thread("#incident-response", parent.ts) == [reply.message]


async def test_pin_events(slack: LocalSlack) -> None:
    app = Recording()
    async with serve_handler(app.handle) as url:
        slack.request_url = url
        posted = await slack.post("alice", "#general", "important")
        assert posted.message is not None
        await slack.pin("carol", posted.message)
        assert slack.pinned("#general") == [posted.message]
        await slack.unpin("carol", posted.message)
        assert slack.pinned("#general") == []
    events = [json.loads(b)["event"] for _, b in app.requests[1:]]
    assert [e["type"] for e in events] == ["pin_added", "pin_removed"]
    assert events[0]["item"]["message"]["ts"] == posted.ts


async def _response_url(slack: LocalSlack) -> str:
    async with serve_handler(Recording().handle) as url:
        slack.request_url = url
        d = await slack.slash("alice", "#incident-response", "/incident")
    assert d.response_url
    return d.response_url


async def test_response_url_five_uses_then_used_url(slack: LocalSlack) -> None:
    hook = AsyncWebhookClient(await _response_url(slack))
    first = await hook.send(text="ephemeral by default")
    assert (first.status_code, first.body) == (200, "ok")
    assert [e.text for e in slack.ephemerals("alice")] == ["ephemeral by default"]
    await hook.send(text="for everyone", response_type="in_channel")
    assert slack.last_message("#incident-response").text == "for everyone"  # type: ignore[union-attr]
    parent = slack.last_message("#incident-response")
    assert parent is not None
    await hook.send_dict({"text": "threaded", "response_type": "in_channel", "thread_ts": parent.ts})
    assert slack.last_reply("#incident-response", parent.ts).text == "threaded"  # type: ignore[union-attr]
    bad = await hook.send(blocks=[{"type": "nope"}], text="x")
    assert (bad.status_code, bad.body) == (400, "invalid_blocks")
    fifth = await hook.send(text="fifth")
    assert fifth.status_code == 200
    sixth = await hook.send(text="sixth")
    assert (sixth.status_code, sixth.body) == (404, "used_url")


async def test_action_response_url_replaces_and_deletes(slack: LocalSlack, client: AsyncWebClient) -> None:
    blocks = [
        {
            "type": "actions",
            "elements": [{"type": "button", "action_id": "go", "text": {"type": "plain_text", "text": "Go"}}],
        }
    ]
    ts = (await client.chat_postMessage(channel="C0GENERAL", text="card", blocks=blocks))["ts"]
    eph_ts = (await client.chat_postEphemeral(channel="C0GENERAL", user="U0BOB", text="e", blocks=blocks))[
        "message_ts"
    ]
    async with serve_handler(Recording().handle) as url:
        slack.request_url = url
        on_card = await slack.click("bob", slack.message("#general", ts), "go")
        [eph] = slack.ephemerals("bob")
        assert eph.ts == eph_ts
        on_eph = await slack.click("bob", eph, "go")
    assert on_card.response_url
    assert on_eph.response_url
    await AsyncWebhookClient(on_card.response_url).send(text="replaced", replace_original=True)
    assert slack.message("#general", ts).text == "replaced"
    await AsyncWebhookClient(on_eph.response_url).send(text="eph replaced", replace_original=True)
    assert [e.text for e in slack.ephemerals("bob")] == ["eph replaced"]
    await AsyncWebhookClient(on_card.response_url).send_dict({"delete_original": True})
    assert slack.messages("#general") == []
    await AsyncWebhookClient(on_eph.response_url).send_dict({"delete_original": True})
    assert slack.ephemerals("bob") == []


async def test_response_url_expires() -> None:
    async with LocalSlack.running(timing=Timing(response_url_ttl=0.2, ack_timeout=1.0)) as slack:
        hook = AsyncWebhookClient(await _response_url(slack))
        await asyncio.sleep(0.3)
        expired = await hook.send(text="late")
        assert (expired.status_code, expired.body) == (404, "expired_url")


MODAL: dict[str, Any] = {"type": "modal", "title": {"type": "plain_text", "text": "T"}, "blocks": []}


async def test_trigger_id_single_use_and_expiry() -> None:
    async with LocalSlack.running(timing=Timing(trigger_ttl=0.3, ack_timeout=1.0)) as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        async with serve_handler(Recording().handle) as url:
            slack.request_url = url
            d = await slack.slash("alice", "#general", "/incident")
            late = await slack.slash("alice", "#general", "/incident")
        assert d.trigger_id
        assert late.trigger_id
        opened = await client.views_open(trigger_id=d.trigger_id, view=MODAL)
        assert slack.current_view("alice").id == opened["view"]["id"]  # type: ignore[union-attr]
        for trigger, error in ((d.trigger_id, "exchanged_trigger_id"), ("1.2.nope", "invalid_trigger_id")):
            with pytest.raises(SlackApiError) as info:
                await client.views_open(trigger_id=trigger, view=MODAL)
            assert info.value.response["error"] == error
        await asyncio.sleep(0.35)
        with pytest.raises(SlackApiError) as info:
            await client.views_open(trigger_id=late.trigger_id, view=MODAL)
        assert info.value.response["error"] == "expired_trigger_id"


async def test_views_update_push_and_hash_conflict(slack: LocalSlack, client: AsyncWebClient) -> None:
    opened = (await client.views_open(trigger_id=slack.new_trigger_id("bob"), view=MODAL))["view"]
    pushed = (await client.views_push(trigger_id=slack.new_trigger_id("bob"), view=MODAL))["view"]
    assert pushed["previous_view_id"] == opened["id"]
    assert slack.current_view("bob").id == pushed["id"]  # type: ignore[union-attr]
    new = {**MODAL, "title": {"type": "plain_text", "text": "Updated"}}
    updated = (await client.views_update(view_id=opened["id"], view=new, hash=opened["hash"]))["view"]
    assert updated["title"]["text"] == "Updated"
    with pytest.raises(SlackApiError) as info:
        await client.views_update(view_id=opened["id"], view=new, hash=opened["hash"])
    assert info.value.response["error"] == "hash_conflict"
    with pytest.raises(SlackApiError) as info:
        await client.views_update(view_id="V404", view=new)
    assert info.value.response["error"] == "not_found"


INPUT_MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "m",
    "title": {"type": "plain_text", "text": "T"},
    "submit": {"type": "plain_text", "text": "Go"},
    "blocks": [
        {
            "type": "input",
            "block_id": "b",
            "label": {"type": "plain_text", "text": "L"},
            "element": {"type": "plain_text_input", "action_id": "a"},
        },
        {
            "type": "input",
            "block_id": "when",
            "optional": True,
            "label": {"type": "plain_text", "text": "W"},
            "element": {"type": "datepicker", "action_id": "d"},
        },
    ],
}


@pytest.mark.parametrize(
    ("ack", "stack_titles"),
    [
        ({}, []),
        ({"response_action": "clear"}, []),
        (
            {"response_action": "update", "view": {**MODAL, "title": {"type": "plain_text", "text": "Next"}}},
            ["Next"],
        ),
        (
            {"response_action": "push", "view": {**MODAL, "title": {"type": "plain_text", "text": "Pushed"}}},
            ["T", "Pushed"],
        ),
        ({"response_action": "errors", "errors": {"b": "nope"}}, ["T"]),
    ],
)
async def test_view_submission_response_actions(
    slack: LocalSlack, client: AsyncWebClient, ack: dict[str, Any], stack_titles: list[str]
) -> None:
    await client.views_open(trigger_id=slack.new_trigger_id("carol"), view=INPUT_MODAL)
    view = slack.current_view("carol")
    assert view is not None
    app = Recording(web.json_response(ack) if ack else web.Response(status=200))
    async with serve_handler(app.handle) as url:
        slack.request_url = url
        d = await slack.submit_view("carol", view, {"a": "typed", "when": {"d": "2025-02-03"}})
    assert d.ok
    payload = json.loads(parse_qs(app.requests[0][1].decode())["payload"][0])
    assert payload["type"] == "view_submission"
    assert payload["view"]["state"]["values"] == {
        "b": {"a": {"type": "plain_text_input", "value": "typed"}},
        "when": {"d": {"type": "datepicker", "selected_date": "2025-02-03"}},
    }
    stack = [slack.state.views[v].title["text"] for v in slack.state.view_stacks["U0CAROL"]]  # type: ignore[index]
    assert stack == stack_titles
    assert d.view_errors == ack.get("errors")


async def test_submit_refuses_missing_required_input(slack: LocalSlack, client: AsyncWebClient) -> None:
    from localslack import DriverError

    await client.views_open(trigger_id=slack.new_trigger_id("carol"), view=INPUT_MODAL)
    view = slack.current_view("carol")
    assert view is not None
    with pytest.raises(DriverError, match="required"):
        await slack.submit_view("carol", view, {"d": "2025-02-03"})
    with pytest.raises(LookupError, match="no inputs named"):
        await slack.submit_view("carol", view, {"a": "x", "typo": "y"})


@pytest.mark.parametrize(
    ("answer", "channel_texts", "ephemeral_texts"),
    [
        (web.Response(text="plain ack"), [], ["plain ack"]),
        (web.json_response({"text": "json ack"}), [], ["json ack"]),
        (web.json_response({"response_type": "in_channel", "text": "for all"}), ["for all"], []),
        (web.Response(status=200), [], []),
    ],
)
async def test_slash_ack_body_lands_as_slack_shows_it(
    slack: LocalSlack, answer: web.Response, channel_texts: list[str], ephemeral_texts: list[str]
) -> None:
    async with serve_handler(Recording(answer).handle) as url:
        slack.request_url = url
        d = await slack.slash("bob", "#general", "/incident status")
    assert d.ok
    assert [m.text for m in slack.messages("#general")] == channel_texts
    assert [e.text for e in slack.ephemerals("bob")] == ephemeral_texts


async def test_slash_ack_timeout_is_reported_not_retried(slack: LocalSlack) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)
        return web.Response(text="too late")

    async with serve_handler(slow) as url:
        slack.request_url = url
        d = await slack.slash("bob", "#general", "/incident status")
        assert d.status is None
        assert d.user_error == "operation_timeout"
        await asyncio.sleep(0.3)
        assert len(d.attempts) == 1
    assert slack.ephemerals("bob") == []

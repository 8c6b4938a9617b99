"""Whatever a listener does, Slack gets a 200 in time and the person is told, never a 404 or 500.

Bolt resets its answer when a listener raises after `ack()`; with nothing acked it then waits its
3 s and answers 404 ("didn't call ack()"). Every listener runs inside `handlers.listening.guarded`.
"""

from __future__ import annotations

import json
import time

import aiohttp
import pytest

from bot.server import BotServer
from handlers.listening import Delivery, Listeners, register
from localslack import LocalSlack
from tests.security import forge

BROKEN_COMMAND = "/broken"


async def acks_then_raises(delivery: Delivery) -> None:
    await delivery.ack()
    raise RuntimeError("a bug after the ack")


async def raises_before_ack(delivery: Delivery) -> None:
    raise RuntimeError("a bug before the ack")


async def _post(bot: BotServer, slack: LocalSlack, body: forge.Body) -> tuple[int, str, float]:
    headers = {**forge.sign(slack.signing_secret, body.data), "Content-Type": str(body.content_type)}
    started = time.perf_counter()
    async with (
        aiohttp.ClientSession() as session,
        session.post(bot.url + "/slack/events", data=body.data, headers=headers) as response,
    ):
        return response.status, await response.text(), time.perf_counter() - started


async def test_a_command_listener_that_raises_after_its_ack_answers_200_at_once_and_tells_the_person(
    slack: LocalSlack, http_bot: BotServer
) -> None:
    assert http_bot.bolt is not None
    register(http_bot.bolt, [Listeners(commands={BROKEN_COMMAND: acks_then_raises})])
    status, _, seconds = await _post(
        http_bot, slack, forge.slash_command(slack, "alice", "general", BROKEN_COMMAND, "")
    )
    assert status == 200
    assert seconds < 2.5, "Bolt waited for an ack it had thrown away"
    notices = await slack.wait_for(lambda: slack.ephemerals("alice", "general"))
    assert "internal error" in notices[-1].text


async def test_a_command_listener_that_raises_before_its_ack_answers_200_with_the_notice(
    slack: LocalSlack, http_bot: BotServer
) -> None:
    assert http_bot.bolt is not None
    register(http_bot.bolt, [Listeners(commands={BROKEN_COMMAND: raises_before_ack})])
    status, body, _ = await _post(
        http_bot, slack, forge.slash_command(slack, "alice", "general", BROKEN_COMMAND, "")
    )
    assert status == 200
    assert "internal error" in json.loads(body)["text"]


async def test_a_button_listener_that_raises_after_its_ack_answers_200(
    slack: LocalSlack, http_bot: BotServer
) -> None:
    assert http_bot.bolt is not None
    register(http_bot.bolt, [Listeners(actions=[("broken_button", acks_then_raises)])])
    payload = forge.button_click(slack, "alice", "general", "broken_button", "x")
    status, _, seconds = await _post(http_bot, slack, forge.interaction(payload))
    assert status == 200
    assert seconds < 2.5


async def test_a_signed_view_submission_without_a_view_type_is_not_a_5xx(
    slack: LocalSlack, http_bot: BotServer
) -> None:
    payload = forge.declare_submission(slack, "alice", "general", "no view type")
    del payload["view"]["type"]
    status, _, _ = await _post(http_bot, slack, forge.interaction(payload))
    assert status < 500


ODD_SHAPES = {
    "user is text": {"user": "U0ALICE"},
    "team is text": {"team": "T0"},
    "channel is a list": {"channel": ["C0GENERAL"]},
    "message is text": {"message": "hello"},
    "container is a list": {"container": []},
    "actions empty": {"actions": []},
    "action is text": {"actions": ["approve"]},
    "view is text": {"type": "view_submission", "view": "V0"},
    "view state is text": {
        "type": "view_submission",
        "view": {"type": "modal", "callback_id": "x", "state": "s"},
    },
    "type is a number": {"type": 7},
}


@pytest.mark.parametrize("change", list(ODD_SHAPES.values()), ids=list(ODD_SHAPES))
async def test_no_signed_interaction_however_odd_gets_a_5xx(
    slack: LocalSlack, http_bot: BotServer, change: dict[str, object]
) -> None:
    payload = {**forge.button_click(slack, "alice", "general", "approval_approve", "REQ-1"), **change}
    status, _, _ = await _post(http_bot, slack, forge.interaction(payload))
    assert status < 500, change

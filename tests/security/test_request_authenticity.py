"""Requests that are not Slack's: forged, stale, replayed, oversized, malformed, mistyped.

Each is refused with a 4xx before anything runs: no Web API call, no row in the bot's store, no
error in its log. The bodies here are ones that *would* act if accepted (declare an incident,
approve a request, answer a mention), and the last test shows that they do when signed properly.
(tests/foundation covers the plain forged/stale slash command and a replayed event.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
import pytest_asyncio

from bot.app import MAX_BODY_BYTES as CAP
from bot.server import BotServer
from localslack import LocalSlack
from tests.conftest import running_bot
from tests.security import forge
from tests.security.conftest import QUIET_SCHEDULES, RUNBOOKS, UNPACED, BotLogs, Effects, effects
from tests.security.forge import FORM, JSON_TYPE, Body

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(
    module_slack: LocalSlack,
    module_database_url: str,
    bot_logs: BotLogs,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[BotServer]:
    async with running_bot(
        module_slack,
        module_database_url,
        tmp_path_factory.mktemp("bot-data"),
        OPSBOT_RUNBOOKS=str(RUNBOOKS),
        **UNPACED,
        **QUIET_SCHEDULES,
    ) as server:
        yield server


def acting_bodies(slack: LocalSlack) -> dict[str, Body]:
    """Requests that change something when Slack sends them."""
    return {
        "declare command": forge.slash_command(
            slack, "alice", "incident-response", "/incident", "declare p1 forged outage"
        ),
        "approve click": forge.interaction(
            forge.button_click(slack, "bob", "incident-response", "approval_approve", "REQ-0001")
        ),
        "declare form": forge.interaction(
            forge.declare_submission(slack, "alice", "incident-response", "forged outage")
        ),
        "mention event": forge.event(
            forge.mention_event(slack, "alice", "incident-response", f"Ev{time.time_ns()}")
        ),
    }


def malformed_bodies() -> dict[str, Body]:
    return {
        "payload not JSON": Body(b"payload=%7Bnot+json", FORM),
        "payload JSON list": Body(b"payload=%5B1%2C2%5D", FORM),
        "payload JSON string": Body(b"payload=%22block_actions%22", FORM),
        "payload JSON null": Body(b"payload=null", FORM),
        "JSON body a list": Body(b"[]", JSON_TYPE),
        "JSON body a number": Body(b"42", JSON_TYPE),
        "JSON body cut off": Body(b'{"type": "event_callback", "event": ', JSON_TYPE),
        "JSON with an odd enterprise": Body(b'{"type": "event_callback", "enterprise": 5}', JSON_TYPE),
        "JSON with odd authorizations": Body(b'{"type": "block_actions", "authorizations": 7}', JSON_TYPE),
        "invalid percent-encoding": Body(b"command=%2Fincident&text=%zz%", FORM),
        "invalid UTF-8 in a form": Body(b"command=%2Fincident&text=\xff\xfe", FORM),
        "invalid UTF-8 in JSON": Body(b'{"type": "\xff"}', JSON_TYPE),
        "text/plain": Body(b"command=%2Fincident&text=declare+p1+x", "text/plain"),
        "multipart": Body(
            b'--b\r\nContent-Disposition: form-data; name="command"\r\n\r\n/incident\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
        ),
        "no content type": Body(b"command=%2Fincident&text=declare+p1+x", None),
        "XML": Body(b"<command>/incident</command>", "application/xml"),
    }


Headers = Callable[[str, bytes], dict[str, str]]


def _future(secret: str, body: bytes) -> dict[str, str]:
    return forge.sign(secret, body, int(time.time()) + 600)


def _stale(secret: str, body: bytes) -> dict[str, str]:
    return forge.sign(secret, body, int(time.time()) - 600)


def _other_body(secret: str, body: bytes) -> dict[str, str]:
    return forge.sign(secret, body + b"&user_id=U0BOB")


def _replace(name: str, value: str) -> Headers:
    def headers(secret: str, body: bytes) -> dict[str, str]:
        return {**forge.sign(secret, body), name: value}

    return headers


def _drop(name: str) -> Headers:
    def headers(secret: str, body: bytes) -> dict[str, str]:
        signed = forge.sign(secret, body)
        del signed[name]
        return signed

    return headers


def _non_numeric_timestamp(secret: str, body: bytes) -> dict[str, str]:
    return forge.sign(secret, body, "1e9")


def _other_version(secret: str, body: bytes) -> dict[str, str]:
    signed = forge.sign(secret, body)
    signed["X-Slack-Signature"] = signed["X-Slack-Signature"].replace("v0=", "v1=")
    return signed


DEFECTS: dict[str, Headers] = {
    "no headers": lambda secret, body: {},
    "no signature": _drop("X-Slack-Signature"),
    "no timestamp": _drop("X-Slack-Request-Timestamp"),
    "wrong secret": lambda secret, body: forge.sign(secret + "-guess", body),
    "signature of another body": _other_body,
    "stale timestamp": _stale,
    "future timestamp": _future,
    "non-numeric timestamp": _non_numeric_timestamp,
    "empty timestamp": _replace("X-Slack-Request-Timestamp", ""),
    "non-ASCII signature": _replace("X-Slack-Signature", "v0=é" + "0" * 63),
    "empty signature": _replace("X-Slack-Signature", ""),
    "other signature version": _other_version,
}


async def settled(bot: BotServer) -> None:
    """Let whatever a request started finish, so a late side effect is not missed."""
    assert bot.runtime is not None
    for _ in range(200):
        if len(bot.runtime.tasks) == 0:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)


async def unchanged(slack: LocalSlack, bot: BotServer, database_url: str, before: Effects) -> None:
    await settled(bot)
    assert await effects(slack, database_url) == before


@pytest.mark.parametrize("defect", DEFECTS)
async def test_an_unauthenticated_request_is_refused_before_anything_runs(
    module_slack: LocalSlack, bot: BotServer, module_database_url: str, bot_logs: BotLogs, defect: str
) -> None:
    slack, url = module_slack, bot.url + "/slack/events"
    logged = bot_logs.mark()
    before = await effects(slack, module_database_url)
    answers = {}
    for name, body in {**acting_bodies(slack), **malformed_bodies()}.items():
        answers[name] = await forge.post(url, body, DEFECTS[defect](slack.signing_secret, body.data))
    acting = {name: status for name, (status, _) in answers.items() if name not in malformed_bodies()}
    assert acting == dict.fromkeys(acting, 401), answers
    assert all(status in (400, 401) for status, _ in answers.values()), answers
    await unchanged(slack, bot, module_database_url, before)
    assert bot_logs.failures(logged) == []


# A stray `%zz` is read leniently as text (as Slack's clients would send it), so signed it is a
# command like any other and not malformed.
@pytest.mark.parametrize("name", [n for n in malformed_bodies() if n != "invalid percent-encoding"])
async def test_a_signed_but_malformed_body_is_400_and_runs_nothing(
    module_slack: LocalSlack,
    bot: BotServer,
    module_database_url: str,
    bot_logs: BotLogs,
    name: str,
) -> None:
    slack, url = module_slack, bot.url + "/slack/events"
    logged = bot_logs.mark()
    body = malformed_bodies()[name]
    before = await effects(slack, module_database_url)
    status, text = await forge.post(url, body, forge.sign(slack.signing_secret, body.data))
    assert status == 400, text
    await unchanged(slack, bot, module_database_url, before)
    assert bot_logs.failures(logged) == []


# Authentic requests no listener is for.
UNHANDLED: dict[str, Body] = {
    "unknown type": forge.interaction({"type": "frobnicate"}),
    "click without actions": forge.interaction({"type": "block_actions", "user": {"id": "U0ALICE"}}),
    "submission without view": forge.interaction({"type": "view_submission", "user": {"id": "U0ALICE"}}),
    "event without event": forge.event({"type": "event_callback", "event_id": "Ev-no-event"}),
    "command the bot does not have": forge.form(
        {"command": "/not-ours", "text": "help", "user_id": "U0ALICE", "channel_id": "C0INCIDENT"}
    ),
    "no type at all": forge.form({"token": "x", "team_id": "T0OPSBOT"}),
}


@pytest.mark.parametrize("name", list(UNHANDLED))
async def test_a_signed_payload_of_an_unknown_kind_is_unhandled_and_runs_nothing(
    module_slack: LocalSlack,
    bot: BotServer,
    module_database_url: str,
    bot_logs: BotLogs,
    name: str,
) -> None:
    slack, url = module_slack, bot.url + "/slack/events"
    logged = bot_logs.mark()
    body = UNHANDLED[name]
    before = await effects(slack, module_database_url)
    status, text = await forge.post(url, body, forge.sign(slack.signing_secret, body.data))
    assert status == 404, text  # Bolt's "unhandled request": authentic, but nothing listens for it
    await unchanged(slack, bot, module_database_url, before)
    assert bot_logs.failures(logged) == []


def _declare_padded_to(slack: LocalSlack, size: int) -> Body:
    body = forge.slash_command(slack, "alice", "incident-response", "/incident", "declare p1 big")
    return Body(body.data + b"&pad=" + b"x" * (size - len(body.data) - 5), body.content_type)


async def test_a_body_over_the_cap_is_413_signed_or_not_and_one_under_it_is_read(
    module_slack: LocalSlack, bot: BotServer, module_database_url: str, bot_logs: BotLogs
) -> None:
    slack, url = module_slack, bot.url + "/slack/events"
    logged = bot_logs.mark()
    before = await effects(slack, module_database_url)
    over = _declare_padded_to(slack, CAP + 1)
    assert len(over.data) == CAP + 1
    assert (await forge.post(url, over, forge.sign(slack.signing_secret, over.data)))[0] == 413
    assert (await forge.post(url, over, {}))[0] == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(9):
            yield b"x" * (64 * 1024)

    # Without a Content-Length the cap still holds: the server stops reading at the limit.
    async with (
        aiohttp.ClientSession(trust_env=False) as session,
        session.post(url, data=chunks(), headers={"Content-Type": FORM}) as response,
    ):
        assert response.status == 413
    await unchanged(slack, bot, module_database_url, before)

    under = Body(
        forge.slash_command(slack, "alice", "incident-response", "/incident", "frobnicate").data
        + b"&pad="
        + b"x" * (CAP - 64 * 1024),
        FORM,
    )
    status, text = await forge.post(url, under, forge.sign(slack.signing_secret, under.data))
    assert status == 200, "a body under the cap is read and answered"
    assert "I don't know" in text
    assert bot_logs.failures(logged) == []


async def test_replayed_commands_clicks_and_submissions_act_once(
    module_slack: LocalSlack, bot: BotServer, module_database_url: str, bot_logs: BotLogs
) -> None:
    slack = module_slack
    logged = bot_logs.mark()
    slack.request_url = bot.url + "/slack/events"

    await slack.slash("carol", "general", "/approvals")
    await slack.wait_for(lambda: slack.calls("chat.postEphemeral"), timeout=10)
    await settled(bot)
    before = await effects(slack, module_database_url)
    again = await slack.replay_last()
    assert again.status == 200
    await unchanged(slack, bot, module_database_url, before)

    card = slack.state.add_message(
        slack.channel("general"),
        user=slack.bot_user_id,
        text="card",
        blocks=[
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "incident_page",
                        "value": "INC-0000-0000",
                        "text": {"type": "plain_text", "text": "Page"},
                    }
                ],
            }
        ],
    )
    ephemerals = len(slack.ephemerals("carol"))
    await slack.click("carol", card, "incident_page")
    await slack.wait_for(lambda: len(slack.ephemerals("carol")) > ephemerals, timeout=10)
    await settled(bot)
    before = await effects(slack, module_database_url)
    assert (await slack.replay_last()).status == 200
    await unchanged(slack, bot, module_database_url, before)

    await slack.slash("alice", "incident-response", "/incident declare")
    form = await slack.wait_for(lambda: slack.current_view("alice"), timeout=10)
    submitted = await slack.submit_view(
        "alice", form, {"severity": "p3", "title": "replayed form", "service": "api"}
    )
    assert submitted.ok
    declared = await slack.wait_for(
        lambda: [c for c in slack.state.channels.values() if c.name.endswith("replayed-form")], timeout=10
    )
    await settled(bot)
    before = await effects(slack, module_database_url)
    assert before.rows["incidents"] >= 1
    assert (await slack.replay_last()).status == 200
    await unchanged(slack, bot, module_database_url, before)
    assert len([c for c in slack.state.channels.values() if c.name.endswith("replayed-form")]) == len(
        declared
    )
    assert bot_logs.failures(logged) == []


async def test_the_same_requests_signed_by_slack_do_act(
    module_slack: LocalSlack, bot: BotServer, module_database_url: str, bot_logs: BotLogs
) -> None:
    """The control: the refused requests above were refused for their defect, not their content."""
    slack, url = module_slack, bot.url + "/slack/events"
    logged = bot_logs.mark()
    for name, body in acting_bodies(slack).items():
        before = await effects(slack, module_database_url)
        status, text = await forge.post(url, body, forge.sign(slack.signing_secret, body.data))
        assert status == 200, (name, text)
        await settled(bot)
        after = await effects(slack, module_database_url)
        assert after.api_calls > before.api_calls, name
    assert bot_logs.failures(logged) == []

"""Who may do what, where — the gaps tests/approvals and tests/incidents leave open.

- an approver who asked for an action still cannot approve it (tests/approvals shows a requester
  who is not an approver being refused, which the group check alone would also do);
- two approvals cannot be made of the requester and one approver, nor of one approval and its replay;
- the requester group and channel scope hold on a diagnosis card's button, not only on `/runbook run`;
- a signed click is judged by the user id in it against the groups, never by a name, and an id that
  spells a group's id or handle is not a member of that group;
- a decided request stays decided whatever is clicked or replayed afterwards;
- an incident card copied into another channel drives nothing.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable

import psycopg
import pytest
import pytest_asyncio

from bot.server import BotServer
from localslack import LocalSlack, Message
from tests.approvals.helpers import button, text_of
from tests.conftest import running_bot
from tests.security import forge
from tests.security.conftest import QUIET_SCHEDULES, UNPACED

pytestmark = pytest.mark.asyncio(loop_scope="module")

COUNTER = """
id: sec.counter
title: Execution counter
summary: actions that record each run, to count executions on the target
source: {seed: 004_64a8611e63a2df9d.txt, section: "Performance Diagnosis"}
command: {family: sec, subcommand: counter}
checks:
  - id: runs
    title: Executions so far
    probe: {kind: postgres, target: app_db, sql: "SELECT count(*) AS runs FROM executions"}
    value: runs
actions:
  - id: record
    title: Record one execution
    risk: high
    step: {kind: postgres, target: app_db, sql: "INSERT INTO executions DEFAULT VALUES RETURNING id"}
  - id: record_critical
    title: Record one execution (critical)
    risk: critical
    step: {kind: postgres, target: app_db, sql: "INSERT INTO executions DEFAULT VALUES RETURNING id"}
next:
  - suggest: ["action:record"]
"""

# alice and dave are on call, bob and carol approve, carol also manages.
POLICY = """
defaults:
  high: {approvers: [approvers], approvals: 1, expiry_minutes: 10}
  critical: {approvers: [approvers], approvals: 2, expiry_minutes: 10}
overrides:
  sec.counter:record: {requesters: [oncall, managers], channels: [incident-response]}
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(
    module_slack: LocalSlack,
    module_database_url: str,
    module_app_db_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[BotServer]:
    directory = tmp_path_factory.mktemp("authz")
    (directory / "runbooks").mkdir()
    (directory / "runbooks" / "counter.yml").write_text(COUNTER)
    (directory / "policy.yml").write_text(POLICY)
    (directory / "targets.yml").write_text(
        f"targets:\n  app_db: {{kind: postgres, dsn: '{module_app_db_url}'}}\n"
    )
    async with await psycopg.AsyncConnection.connect(module_app_db_url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE executions (id serial PRIMARY KEY)")
    async with running_bot(
        module_slack,
        module_database_url,
        directory / "data",
        OPSBOT_RUNBOOKS=str(directory / "runbooks"),
        OPSBOT_POLICY=str(directory / "policy.yml"),
        OPSBOT_TARGETS=str(directory / "targets.yml"),
        **UNPACED,
        **QUIET_SCHEDULES,
    ) as server:
        yield server


async def executions(dsn: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        row = await (await conn.execute("SELECT count(*) FROM executions")).fetchone()
    return int(row[0]) if row else 0


async def request_row(dsn: str, request_id: str) -> tuple[str, list[str]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        row = await (
            await conn.execute("SELECT state, approvers FROM approval_requests WHERE id = %s", (request_id,))
        ).fetchone()
    assert row is not None
    return str(row[0]), list(row[1])


async def audited(dsn: str) -> list[tuple[str, str, str]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        rows = await (await conn.execute("SELECT actor, action, outcome FROM audit_events")).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def approval_cards(slack: LocalSlack) -> list[Message]:
    return [m for m in slack.messages("incident-response") if "Approval needed" in text_of(m.blocks)]


async def request(slack: LocalSlack, user: str, action: str) -> tuple[Message, str]:
    """`user` asks for `action` in #incident-response with a reason; the card and its request id."""
    before = len(approval_cards(slack))
    await slack.slash(user, "incident-response", f"/runbook run sec.counter:{action}")
    modal = await slack.wait_for(lambda: slack.current_view(user), timeout=10)
    await slack.submit_view(user, modal, {"reason": "security suite checks the rule"})
    card = (await slack.wait_for(lambda: approval_cards(slack)[before:], timeout=15))[-1]
    approve = next(
        e
        for b in card.blocks or []
        for e in b.get("elements", [])
        if e.get("action_id") == "approval_approve"
    )
    return card, str(approve["value"])


async def told(slack: LocalSlack, user: str, words: str) -> None:
    await slack.wait_for(lambda: [e for e in slack.ephemerals(user) if words in e.text], timeout=10)


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(300):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(what)


async def settled(dsn: str, request_id: str, state: str) -> None:
    async def reached() -> bool:
        return (await request_row(dsn, request_id))[0] == state

    await eventually(reached, f"{request_id} never reached {state}")


async def test_an_approver_cannot_approve_their_own_request(
    module_slack: LocalSlack, bot: BotServer, module_database_url: str, module_app_db_url: str
) -> None:
    slack = module_slack
    card, request_id = await request(slack, "carol", "record")  # carol is an approver herself
    stale = copy.deepcopy(card)
    await slack.click("carol", card, button(card, "approval_approve"))
    await told(slack, "carol", "cannot approve your own request")
    assert await request_row(module_database_url, request_id) == ("pending", [])
    assert await executions(module_app_db_url) == 0

    await slack.click("bob", card, button(card, "approval_approve"))
    await settled(module_database_url, request_id, "succeeded")
    assert await executions(module_app_db_url) == 1

    # Afterwards: a replay of the approving click, a stale copy of the card, a second approver.
    assert (await slack.replay_last()).status == 200
    await slack.click("bob", stale, button(stale, "approval_approve"))
    await told(slack, "bob", "already succeeded")
    await slack.click("carol", stale, button(stale, "approval_approve"))
    await told(slack, "carol", "already succeeded")
    assert await executions(module_app_db_url) == 1
    refusals = await audited(module_database_url)
    assert ("U0CAROL", "approval.refused", "own_request") in refusals
    assert ("U0BOB", "approval.refused", "already_succeeded") in refusals


async def test_two_approvals_are_not_made_of_the_requester_or_of_a_replay(
    module_slack: LocalSlack, bot: BotServer, module_database_url: str, module_app_db_url: str
) -> None:
    slack = module_slack
    ran = await executions(module_app_db_url)
    card, request_id = await request(slack, "bob", "record_critical")
    await slack.click("carol", card, button(card, "approval_approve"))

    async def approved_once() -> bool:
        return bool((await request_row(module_database_url, request_id))[1])

    await eventually(approved_once, "carol's approval was not recorded")
    assert await request_row(module_database_url, request_id) == ("pending", ["U0CAROL"])
    assert (await slack.replay_last()).status == 200, "the replayed approval is acknowledged…"
    await slack.click("bob", card, button(card, "approval_approve"))
    await told(slack, "bob", "cannot approve your own request")
    await slack.click("carol", card, button(card, "approval_approve"))
    await told(slack, "carol", "already approved")
    assert await request_row(module_database_url, request_id) == ("pending", ["U0CAROL"]), "…not counted"
    assert await executions(module_app_db_url) == ran


async def test_the_requester_group_and_the_channel_scope_hold_on_the_cards_button(
    module_slack: LocalSlack, bot: BotServer, module_database_url: str
) -> None:
    slack = module_slack

    async def offered_card(user: str, channel: str) -> Message:
        await slack.slash(user, channel, "/sec counter")
        found = await slack.wait_for(
            lambda: [m for m in slack.messages(channel) if "request_action" in text_of(m.blocks)], timeout=15
        )
        return found[-1]

    card = await offered_card("bob", "incident-response")  # bob approves but may not request
    await slack.click("bob", card, button(card, "request_action"))
    await told(slack, "bob", "not in a group allowed to request")
    assert slack.current_view("bob") is None

    card = await offered_card("alice", "general")  # alice may request, but not from here
    await slack.click("alice", card, button(card, "request_action"))
    await told(slack, "alice", "can only be requested in #incident-response")
    assert slack.current_view("alice") is None
    refusals = await audited(module_database_url)
    assert ("U0BOB", "approval.request_refused", "not_requester") in refusals
    assert ("U0ALICE", "approval.request_refused", "wrong_channel") in refusals


@pytest.mark.parametrize(
    ("user_id", "name"),
    [
        ("U0DAVE", "bob"),  # a non-approver whose payload carries an approver's name
        ("approvers", "approvers"),  # the approver group's handle as a user id
        ("S0APPROVERS", "approvers"),  # the approver group's id as a user id
    ],
)
async def test_a_signed_click_is_judged_by_its_user_id_against_the_groups(
    module_slack: LocalSlack,
    bot: BotServer,
    module_database_url: str,
    module_app_db_url: str,
    user_id: str,
    name: str,
) -> None:
    slack = module_slack
    ran = await executions(module_app_db_url)
    _, request_id = await request(slack, "alice", "record")
    forged = forge.button_click(slack, "dave", "incident-response", "approval_approve", request_id)
    forged["user"] = {"id": user_id, "username": name, "name": name, "team_id": slack.team_id}
    body = forge.interaction(forged)
    status, _ = await forge.post(bot.url + "/slack/events", body, forge.sign(slack.signing_secret, body.data))
    assert status == 200

    async def refused() -> bool:
        rows = await audited(module_database_url)
        # An id that is no real user is refused at the door (admission), a real non-approver by the policy.
        return (user_id, "approval.refused", "not_approver") in rows or (
            user_id,
            "access.refused",
            "refused",
        ) in rows

    await eventually(refused, f"{user_id} was not refused as a non-approver")
    assert await request_row(module_database_url, request_id) == ("pending", [])
    assert await executions(module_app_db_url) == ran

    # The control: the same click with an approver's id does approve and run.
    forged = forge.button_click(slack, "bob", "incident-response", "approval_approve", request_id)
    body = forge.interaction(forged)
    assert (await forge.post(bot.url + "/slack/events", body, forge.sign(slack.signing_secret, body.data)))[
        0
    ] == 200
    await settled(module_database_url, request_id, "succeeded")
    assert await executions(module_app_db_url) == ran + 1


async def test_an_incident_card_copied_into_another_channel_drives_nothing(
    module_slack: LocalSlack, bot: BotServer, module_database_url: str
) -> None:
    slack = module_slack
    await slack.slash("alice", "incident-response", "/incident declare p2 copied card")
    channel = await slack.wait_for(
        lambda: next((c for c in slack.state.channels.values() if c.name.endswith("copied-card")), None),
        timeout=15,
    )
    incident_card = (
        await slack.wait_for(
            lambda: [m for m in slack.messages(channel.id) if "incident_resolve" in text_of(m.blocks)],
            timeout=15,
        )
    )[-1]
    # The declaration's last write (the topic, stored before it is set in Slack) is in: what the
    # store holds now is what the copied card's clicks must leave alone.
    await slack.wait_for(lambda: channel.topic["value"], timeout=15)
    async with await psycopg.AsyncConnection.connect(module_database_url) as conn:
        before = await (await conn.execute("SELECT * FROM incidents")).fetchall()
    copied = (await slack.post("carol", "general", "look at this", blocks=incident_card.blocks)).message
    assert copied is not None
    clicks = [
        "incident_resolve",
        "incident_update",
        "incident_page",
        "incident_diagnose",
        "incident_claim:comms",
    ]
    for n, action_id in enumerate(clicks, start=1):
        await slack.click("carol", copied, action_id)
        await slack.wait_for(
            lambda n=n: (
                len([e for e in slack.ephemerals("carol", "general") if "no longer belongs" in e.text]) >= n
            ),
            timeout=10,
        )
    assert slack.current_view("carol") is None
    async with await psycopg.AsyncConnection.connect(module_database_url) as conn:
        assert await (await conn.execute("SELECT * FROM incidents")).fetchall() == before

"""Approvals reach the people who can give them, and each click says what it did (issue #16)."""

from __future__ import annotations

import psycopg

from bot.server import BotServer
from localslack import LocalSlack, Message
from tests.approvals.helpers import button, card_state, text_of


async def declare(slack: LocalSlack) -> str:
    """alice declares an incident; the name of its new channel."""
    await slack.slash("alice", "incident-response", "/incident declare p1 checkout errors")
    created = await slack.wait_for(
        lambda: [c for c in slack.calls("conversations.create") if c.ok], timeout=10
    )
    name = str(created[-1].args["name"])
    await slack.wait_for(lambda: [m for m in slack.messages(name) if "INC-" in m.text], timeout=10)
    return name


async def requested(
    slack: LocalSlack, channel: str, action: str, reason: str = "checkout is failing"
) -> Message:
    """alice runs `/runbook run test.counter:<action>` in `channel` and gives a reason; the card."""
    await slack.slash("alice", channel, f"/runbook run test.counter:{action}")
    view = await slack.wait_for(lambda: slack.current_view("alice"), timeout=5)
    await slack.submit_view("alice", view, {"reason": reason})
    return (
        await slack.wait_for(
            lambda: [m for m in slack.messages(channel) if "approval_approve" in text_of(m.blocks)],
            timeout=15,
        )
    )[-1]


async def test_approvers_are_invited_to_the_incident_channel_and_mentioned(
    slack: LocalSlack, approvals_bot: BotServer
) -> None:
    name = await declare(slack)
    assert "U0BOB" not in slack.channel(name).members
    assert "U0CAROL" not in slack.channel(name).members

    card = await requested(slack, name, "record")
    await slack.wait_for(lambda: {"U0BOB", "U0CAROL"} <= set(slack.channel(name).members), timeout=10)
    mention = await slack.wait_for(
        lambda: [m for m in slack.thread(name, card.ts) if "<!subteam^S0APPROVERS>" in m.text], timeout=10
    )
    assert card.ts and "Needs 1 approval" in mention[-1].text
    assert "U0DAVE" not in slack.channel(name).members  # not an approver: not invited


async def test_outside_an_incident_channel_approvers_are_mentioned_not_invited(
    slack: LocalSlack, approvals_bot: BotServer
) -> None:
    card = await requested(slack, "incident-response", "record")
    await slack.wait_for(
        lambda: [m for m in slack.thread("incident-response", card.ts) if "<!subteam^S0APPROVERS>" in m.text],
        timeout=10,
    )
    assert not [c for c in slack.calls("conversations.invite") if c.args.get("channel") == card.channel]


async def test_each_approver_learns_what_their_click_did_and_the_card_says_the_outcome(
    slack: LocalSlack, approvals_bot: BotServer
) -> None:
    await slack.slash("alice", "incident-response", "/runbook run test.counter:record_twice_approved")
    form = await slack.wait_for(lambda: slack.current_view("alice"), timeout=5)
    assert "Needs 2 approvals" in text_of(form.blocks)
    await slack.submit_view("alice", form, {"reason": "needs two people"})
    card = (
        await slack.wait_for(
            lambda: [
                m for m in slack.messages("incident-response") if "approval_approve" in text_of(m.blocks)
            ],
            timeout=15,
        )
    )[-1]
    assert "Needs 2 approvals" in text_of(card.blocks)
    receipt = await slack.wait_for(
        lambda: [e for e in slack.ephemerals("alice") if "Requested REQ-" in e.text]
    )
    assert "Needs 2 approvals" in receipt[-1].text

    await slack.click("bob", card, button(card, "approval_approve"))
    first = await slack.wait_for(lambda: [e for e in slack.ephemerals("bob") if "Approved 1 of 2" in e.text])
    assert "one more approval needed" in first[-1].text
    waiting = slack.message("incident-response", card.ts)
    assert "Approval needed" in text_of(waiting.blocks[:1])

    await slack.click("carol", card, button(card, "approval_approve"))
    second = await slack.wait_for(
        lambda: [e for e in slack.ephemerals("carol") if "Approved 2 of 2" in e.text]
    )
    assert "running now" in second[-1].text
    done = await card_state(slack, card, "✅ Done")
    assert "✅ Done: Record one execution (critical)" in text_of(done.blocks[:1])
    assert "Approval needed" not in text_of(done.blocks)

    denied_card = await requested(slack, "incident-response", "record")
    await slack.click("carol", denied_card, button(denied_card, "approval_deny"))
    denied = await slack.wait_for(lambda: [e for e in slack.ephemerals("carol") if "Denied" in e.text])
    assert "nothing will run" in denied[-1].text
    redrawn = await card_state(slack, denied_card, "🚫 Denied")
    assert "🚫 Denied: Record one execution" in text_of(redrawn.blocks[:1])


async def test_runbook_show_says_how_many_approvals_each_action_needs(
    slack: LocalSlack, approvals_bot: BotServer
) -> None:
    await slack.slash("bob", "incident-response", "/runbook show test.counter")
    shown = text_of(slack.ephemerals("bob")[-1].blocks)
    assert "Record one execution* — 🟠 high · Needs 1 approval" in shown
    assert "Record one execution (critical)* — 🔴 critical · Needs 2 approvals" in shown


async def test_an_action_without_a_preview_says_why_on_the_form_and_the_card(
    slack: LocalSlack, approvals_bot: BotServer
) -> None:
    await slack.slash("alice", "incident-response", "/runbook run test.counter:flush")
    form = await slack.wait_for(lambda: slack.current_view("alice"), timeout=5)
    assert "No preview:* FLUSHDB has no dry run" in text_of(form.blocks)
    await slack.submit_view("alice", form, {"reason": "stale entries everywhere"})
    card = (
        await slack.wait_for(
            lambda: [
                m for m in slack.messages("incident-response") if "Flush the cache" in text_of(m.blocks)
            ],
            timeout=15,
        )
    )[-1]
    assert "No preview:* FLUSHDB has no dry run" in text_of(card.blocks)


async def test_a_preview_that_affects_nothing_says_so_before_anyone_approves(
    slack: LocalSlack, approvals_bot: BotServer
) -> None:
    card = await requested(slack, "incident-response", "forget")
    assert "This would affect nothing right now (0 rows)" in text_of(card.blocks)
    assert "Would affect 0 rows" not in text_of(card.blocks)


async def test_a_risky_request_that_would_affect_nothing_is_refused(
    slack: LocalSlack, approvals_bot: BotServer, database_url: str
) -> None:
    # No connection has been idle for ten hours: the high-risk terminate would change nothing.
    await slack.slash(
        "alice", "incident-response", "/runbook run db.connections:terminate_idle idle_minutes=600"
    )
    form = await slack.wait_for(lambda: slack.current_view("alice"), timeout=5)
    await slack.submit_view("alice", form, {"reason": "pool exhausted, P1"})
    refusal = await slack.wait_for(
        lambda: [e for e in slack.ephemerals("alice") if "affect nothing" in e.text], timeout=15
    )
    assert refusal[-1].text.startswith("This would affect nothing right now")
    assert "nothing was requested" in refusal[-1].text
    assert not [m for m in slack.messages("incident-response") if "approval_approve" in text_of(m.blocks)]
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        requests = await (await conn.execute("SELECT count(*) FROM approval_requests")).fetchone()
        refused = await (
            await conn.execute(
                "SELECT count(*) FROM audit_events"
                " WHERE action = 'approval.request_refused' AND outcome = 'affects_nothing'"
            )
        ).fetchone()
    assert requests == (0,) and refused == (1,)


def _served(bot: BotServer, priority: str) -> float:
    """Web API calls the bot's outbound scheduler has let through at `priority` so far."""
    assert bot.runtime is not None
    for metric in bot.runtime.metrics.slack_outbound_wait.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels.get("priority") == priority:
                return sample.value
    return 0.0


async def test_the_mention_and_the_runs_account_wait_behind_answers_as_news(
    slack: LocalSlack, approvals_bot: BotServer
) -> None:
    """The card answers the requester and the clicker; calling the approvers and the run's account in
    the thread are news for the channel, so under Slack's one post a second they let people's
    answers (a `/db` card, the next request's card) go first (issue #19)."""
    before = _served(approvals_bot, "announce")
    card = await requested(slack, "incident-response", "record")
    await slack.wait_for(
        lambda: [m for m in slack.thread("incident-response", card.ts) if "<!subteam^S0APPROVERS>" in m.text],
        timeout=10,
    )
    await slack.click("bob", card, button(card, "approval_approve"))
    await slack.wait_for(
        lambda: [m for m in slack.thread("incident-response", card.ts) if "succeeded" in m.text], timeout=15
    )
    assert _served(approvals_bot, "announce") - before >= 2
    assert "Done" in text_of(slack.message("incident-response", card.ts).blocks)

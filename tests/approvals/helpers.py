"""Driving the approval flow through localslack as people would."""

from __future__ import annotations

import json

from localslack import LocalSlack, Message


def text_of(blocks: object) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def cards(slack: LocalSlack, title: str, channel: str = "incident-response") -> list[Message]:
    return [m for m in slack.messages(channel) if m.blocks and title in text_of(m.blocks[:1])]


def button(message: Message, prefix: str) -> str:
    return next(
        e["action_id"]
        for b in message.blocks or []
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"].startswith(prefix)
    )


async def request_action(
    slack: LocalSlack, user: str, command: str, reason: str = "pool exhausted, P1"
) -> Message:
    """Run a diagnosis, click its action button, give a reason; return the approval card."""
    before = len(cards(slack, "Approval needed"))
    await slack.slash(user, "incident-response", command)
    card = (
        await slack.wait_for(
            lambda: [
                m
                for m in slack.messages("incident-response")
                if m.blocks and "request_action" in text_of(m.blocks)
            ],
            timeout=15,
        )
    )[-1]
    await slack.click(user, card, button(card, "request_action"))
    view = await slack.wait_for(lambda: slack.current_view(user), timeout=5)
    receipts = len(_receipts(slack, user))
    await slack.submit_view(user, view, {"reason": reason})
    approvals = await slack.wait_for(
        lambda: len(cards(slack, "Approval needed")) > before and cards(slack, "Approval needed"), timeout=15
    )
    receipt = (await slack.wait_for(lambda: _receipts(slack, user)[receipts:], timeout=15))[-1]
    # The approvers' mention in the card's thread is the request's last step (it waits behind the
    # requester's receipt): after it nothing of the request is still being posted, so a fault a test
    # injects next meets only what it means to.
    request_id = receipt.split()[1].rstrip(".:")
    card = approvals[-1]
    mention = f"{request_id} waits for you"
    await slack.wait_for(
        lambda: [m for m in slack.thread("incident-response", card.ts) if mention in m.text], timeout=15
    )
    return card


def _receipts(slack: LocalSlack, user: str) -> list[str]:
    return [
        e.text for e in slack.ephemerals(user, "incident-response") if e.text.startswith("Requested REQ-")
    ]


async def card_state(slack: LocalSlack, card: Message, state: str, timeout: float = 15) -> Message:
    def current() -> Message | None:
        message = slack.message("incident-response", card.ts)
        return message if state in text_of(message.blocks) else None

    return await slack.wait_for(current, timeout=timeout)

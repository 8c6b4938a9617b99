"""How a listener is registered and what it is handed: one table per handler module, one guard.

A listener is a module-level `async def name(delivery: Delivery) -> None`. `Delivery` carries the
ack, the raw body and what the app's middleware put in Bolt's context: the services, the asker, the
incident of the channel. Every listener runs inside `guarded`, which turns whatever it raises into
one ephemeral for the asker (a `UserError`'s own sentence) and never lets it reach Bolt — where an
exception after `ack()` could make Bolt answer Slack 404 ("didn't call ack()") instead of 200.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext

from bot.commands import CommandCatalogue
from bot.incidents.store import Incident
from bot.services.container import Services
from bot.slack.asker import Asker, log_failure, notice_for, remember, report_failure

Listener = Callable[["Delivery"], Awaitable[None]]
ChannelIncident = Callable[[], Awaitable[Incident | None]]


@dataclass
class Delivery:
    """One command, click, form or event as a listener sees it."""

    ack: AsyncAck
    body: dict[str, Any]
    context: AsyncBoltContext

    @property
    def services(self) -> Services:
        services: Services = self.context["services"]
        return services

    @property
    def commands(self) -> CommandCatalogue:
        commands: CommandCatalogue = self.context["commands"]
        return commands

    @property
    def asker(self) -> Asker:
        """Who sent it; only events have none, and event listeners do not ask."""
        asker: Asker | None = self.context.get("asker")
        if asker is None:
            raise LookupError("this delivery has no asker")
        return asker

    async def incident(self) -> Incident | None:
        """The incident whose channel this delivery came from, if any (looked up once, after the ack)."""
        lookup: ChannelIncident = self.context["incident"]
        return await lookup()

    @property
    def text(self) -> str:
        return str(self.body.get("text") or "")

    @property
    def action(self) -> dict[str, Any]:
        """The button or menu that was clicked."""
        actions = self.body.get("actions") or [{}]
        return dict(actions[0])

    @property
    def view(self) -> dict[str, Any]:
        return dict(self.body.get("view") or {})

    def spawn(self, work: Coroutine[Any, Any, Any], name: str, *, answer: Asker | None = None) -> None:
        """Run the use case after the ack, as a tracked task that answers the asker if it fails —
        or `answer`, where the asker is better reached elsewhere (a form's channel, not a DM)."""
        if answer is not None:
            remember(answer)
        self.services.tasks.spawn(work, name=name)


@dataclass(frozen=True)
class Listeners:
    """A handler module's table: slash commands, actions (id or pattern), views and events."""

    commands: Mapping[str, Listener] = field(default_factory=dict)
    actions: Sequence[tuple[str | re.Pattern[str], Listener]] = ()
    views: Mapping[str, Listener] = field(default_factory=dict)
    events: Mapping[str, Listener] = field(default_factory=dict)


def guarded(listener: Listener) -> Callable[..., Awaitable[None]]:
    """The function Bolt calls: builds the `Delivery`, runs the listener, and answers any failure."""

    async def run(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        delivery = Delivery(ack=ack, body=body, context=context)
        try:
            await listener(delivery)
        except Exception as exc:
            await _answer_failure(delivery, exc)

    run.__name__ = listener.__name__
    run.__qualname__ = listener.__qualname__
    return run


async def _answer_failure(delivery: Delivery, exc: Exception) -> None:
    if delivery.ack.response is None and "command" in delivery.body:
        # A command not yet acked carries the notice in its answer: nothing else to post.
        log_failure(exc)
        await delivery.ack(response_type="ephemeral", text=notice_for(exc))
        return
    if delivery.ack.response is None:
        await delivery.ack()
    await report_failure(delivery.services.client, exc, asker=delivery.context.get("asker"))


def register(app: AsyncApp, tables: Sequence[Listeners]) -> None:
    """Every table's listeners, with one Bolt listener for all slash commands and one for all
    actions: Bolt asks each listener in turn whether a request is its own, building that listener's
    arguments to ask, so 21 commands registered one by one cost a request up to 21 such builds in
    its ack. Our own tables then pick the listener (an action: the first id or pattern that fits, in
    table order, as Bolt would have)."""
    commands = {name: guarded(fn) for table in tables for name, fn in table.commands.items()}
    actions = [(ref, guarded(fn)) for table in tables for ref, fn in table.actions]
    if commands:
        app.command(_one_of(commands))(_command_router(commands))
    if actions:
        app.action(_one_of([ref for ref, _ in actions]))(_action_router(actions))
    for table in tables:
        for callback_id, listener in table.views.items():
            app.view(callback_id)(guarded(listener))
        for event, listener in table.events.items():
            app.event(event)(guarded(listener))


Guarded = Callable[..., Awaitable[None]]


def _one_of(refs: Iterable[str | re.Pattern[str]]) -> re.Pattern[str]:
    """One pattern that Bolt's `search` finds exactly where one of `refs` would have matched."""
    parts = [f"^{re.escape(ref)}$" if isinstance(ref, str) else ref.pattern for ref in refs]
    return re.compile("|".join(f"(?:{part})" for part in parts))


def _command_router(commands: Mapping[str, Guarded]) -> Guarded:
    async def command(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        await commands[str(body["command"])](ack=ack, body=body, context=context)

    return command


def _action_router(actions: Sequence[tuple[str | re.Pattern[str], Guarded]]) -> Guarded:
    async def action(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        action_id = str((body.get("actions") or [{}])[0].get("action_id") or body.get("callback_id") or "")
        for ref, listener in actions:
            if ref == action_id if isinstance(ref, str) else ref.search(action_id):
                await listener(ack=ack, body=body, context=context)
                return
        await ack()

    return action

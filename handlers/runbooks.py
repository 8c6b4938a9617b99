"""`/runbook` and the command families the catalogue defines (`/db`, `/cache`, `/health`, `/diagnose`…),
plus the "Run <runbook>" buttons on diagnosis cards.

Listeners parse and ack at once; the diagnosis runs in a tracked task and its card is posted to
the channel (or into the thread of the card whose button was clicked).
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands import CommandCatalogue, SlashCommand, Subcommand
from bot.logs import get_logger
from bot.mrkdwn import escape
from bot.render.catalogue import list_blocks, show_blocks
from bot.render.diagnosis import RUN_RUNBOOK, diagnosis_blocks, diagnosis_text, full_output
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.commands import ActionRequest, RunRequest, Usage, parse_family, parse_run, runbook_usage
from bot.runbooks.engine import Diagnosis
from bot.runbooks.params import ParamError, bind_params
from bot.runtime import Runtime
from bot.slack.post import PostFailed, attach_file, post_message
from handlers.approvals import request_from_command

log = get_logger(__name__)

FAMILY_DESCRIPTIONS = {
    "db": "Diagnose the application database: connections, activity, slow queries, locks, sizes",
    "cache": "Diagnose the Redis cache: hit rate, memory, evictions, keys",
    "health": "Check the health of the services",
    "diagnose": "Run an incident checklist: p0 (service down), p1 (errors), p2 (latency)",
}

RUNBOOK = SlashCommand(
    command="/runbook",
    description="List, explain and run the runbooks",
    usage_hint="list | show <id> | run <id> [name=value …]",
    subcommands=[
        Subcommand(name="list", usage="list", summary="every runbook, its command and its risk"),
        Subcommand(name="show", usage="show <id>", summary="what a runbook checks and may do"),
        Subcommand(name="run", usage="run <id> [name=value …]", summary="run a runbook's diagnosis here"),
    ],
)
SCOPES = ("commands", "chat:write", "channels:join", "files:write")
# Families whose slash command has its own handler, which runs their runbooks as subcommands.
OWN_HANDLER = frozenset({"incident"})
EVENTS: tuple[str, ...] = ()


def slash_commands(runbooks: Catalogue) -> list[SlashCommand]:
    commands = [RUNBOOK]
    for family, members in runbooks.families().items():
        if family in OWN_HANDLER:
            continue
        names = [r.command.subcommand for r in members if r.command and r.command.subcommand]
        commands.append(
            SlashCommand(
                command=f"/{family}",
                description=FAMILY_DESCRIPTIONS.get(
                    family, f"Runbooks: {', '.join(r.title for r in members)}"
                )[:2000],
                usage_hint=(" | ".join(names) or "[name=value …]")[:1000],
                subcommands=[
                    Subcommand(
                        name=(r.command.subcommand if r.command and r.command.subcommand else "run"),
                        usage=runbook_usage(r).split("`")[1].removeprefix(f"/{family}").strip() or "",
                        summary=r.title,
                    )
                    for r in members
                ],
            )
        )
    return commands


class RunButton(BaseModel):
    """What a "Run <runbook>" button carries; parameters are re-validated on click."""

    runbook: str
    params: dict[str, str] = {}


def register(app: AsyncApp, runtime: Runtime, catalogue: CommandCatalogue) -> None:
    runbooks = runtime.runbooks

    async def start(
        request: RunRequest,
        client: AsyncWebClient,
        respond: AsyncRespond,
        *,
        user: str,
        channel: str,
        thread_ts: str | None = None,
    ) -> None:
        runtime.tasks.spawn(
            deliver_diagnosis(
                runtime, request, client, respond, user=user, channel=channel, thread_ts=thread_ts
            ),
            name=f"diagnosis:{request.runbook_id}",
        )

    async def answer(
        request: RunRequest | Usage,
        ack: AsyncAck,
        client: AsyncWebClient,
        respond: AsyncRespond,
        body: dict[str, Any],
    ) -> None:
        if isinstance(request, Usage):
            await ack(response_type="ephemeral", text=request.text)
            return
        runbook = runbooks.runbooks[request.runbook_id]
        await ack(
            response_type="ephemeral",
            text=f"Running *{escape(runbook.title)}*… the result will be posted here.",
        )
        await start(request, client, respond, user=body["user_id"], channel=body["channel_id"])

    @app.command(RUNBOOK.command)
    async def runbook_command(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        text = str(body.get("text") or "").strip()
        subcommand, _, rest = text.partition(" ")
        subcommand = subcommand.lower()
        if subcommand == "list":
            await ack(
                response_type="ephemeral", text=f"{len(runbooks)} runbooks", blocks=list_blocks(runbooks)
            )
        elif subcommand == "show":
            runbook = runbooks.get(rest.strip().lower())
            if runbook is None:
                await ack(
                    response_type="ephemeral",
                    text=f"No runbook `{escape(rest.strip()[:60])}`. Try `/runbook list`.",
                )
            else:
                await ack(response_type="ephemeral", text=runbook.title, blocks=show_blocks(runbook))
        elif subcommand == "run":
            parsed = parse_run(rest, runbooks)
            if isinstance(parsed, ActionRequest):
                await ack()
                await request_from_command(runtime.approvals, parsed, body, client)
            else:
                await answer(parsed, ack, client, respond, body)
        else:
            unknown = f"I don't know `{escape(subcommand[:40])}`.\n" if subcommand else ""
            await ack(response_type="ephemeral", text=unknown + RUNBOOK.usage())

    def family_listener(family: str) -> Any:
        async def family_command(
            ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
        ) -> None:
            await answer(
                parse_family(family, str(body.get("text") or ""), runbooks), ack, client, respond, body
            )

        family_command.__name__ = f"{family}_command"
        return family_command

    for family in runbooks.families():
        if family not in OWN_HANDLER:
            app.command(f"/{family}")(family_listener(family))

    @app.action(re.compile(rf"^{RUN_RUNBOOK}:\d+$"))
    async def run_button(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        user = body["user"]["id"]
        try:
            button = RunButton.model_validate_json(body["actions"][0]["value"])
            runbook = runbooks.get(button.runbook)
            if runbook is None:
                raise ParamError(f"the runbook {button.runbook} no longer exists")
            params = bind_params(list(runbook.params), [f"{k}={v}" for k, v in button.params.items()])
        except (ValidationError, ParamError, KeyError) as exc:
            await respond(
                response_type="ephemeral",
                replace_original=False,
                text=f"That button no longer works: {escape(str(exc))[:300]}",
            )
            return
        message = body.get("message") or {}
        thread_ts = message.get("thread_ts") or message.get("ts")
        request = RunRequest(runbook_id=runbook.id, params=params)
        await start(request, client, respond, user=user, channel=body["channel"]["id"], thread_ts=thread_ts)


async def deliver_diagnosis(
    runtime: Runtime,
    request: RunRequest,
    client: AsyncWebClient,
    respond: AsyncRespond | None,
    *,
    user: str,
    channel: str,
    thread_ts: str | None,
) -> Diagnosis:
    """Run the diagnosis, post its card, attach long output in the thread, record it."""
    structlog.contextvars.bind_contextvars(runbook_id=request.runbook_id)
    runbook = runtime.runbooks.runbooks[request.runbook_id]
    diagnosis, shared = await runtime.diagnoses.run(runbook, request.params)
    structlog.contextvars.bind_contextvars(run_id=diagnosis.run_id)
    blocks, overflow = diagnosis_blocks(diagnosis, runbook, requested_by=user, shared=shared)
    ts: str | None = None
    try:
        ts = await post_message(client, channel, diagnosis_text(diagnosis), blocks, thread_ts=thread_ts)
    except PostFailed as exc:
        log.warning("diagnosis_post_failed", error=exc.error)
        if respond is not None:
            await respond(
                response_type="ephemeral",
                replace_original=False,
                text=f"I could not post in this channel ({exc.error}); here is the result.",
                blocks=blocks,
            )
    if overflow and ts is not None:
        await attach_file(
            client,
            channel,
            ts,
            f"{runbook.id}-{diagnosis.run_id}.md",
            full_output(diagnosis),
            f"{runbook.title}: full output",
        )
    try:
        await runtime.diagnoses.record(
            diagnosis, shared=shared, requested_by=user, channel=channel, message_ts=ts
        )
    except Exception as exc:  # the card is out; losing the record must not hide it
        log.error("diagnosis_not_recorded", error=str(exc))
    return diagnosis

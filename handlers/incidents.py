"""`/incident` and the incident card's buttons and forms (the 📌 timeline lives in `timeline.py`)."""

from __future__ import annotations

import json
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands import CommandCatalogue, SlashCommand, Subcommand
from bot.incidents import commands as parsing
from bot.incidents.severity import SEVERITIES
from bot.incidents.store import Incident
from bot.logs import get_logger
from bot.mrkdwn import escape
from bot.render import incident as render
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.commands import RunRequest, parse_family
from bot.runtime import Runtime
from bot.services.incidents import IncidentError
from handlers.reviews import publish_review
from handlers.runbooks import deliver_diagnosis

log = get_logger(__name__)

SCOPES = (
    "commands",
    "chat:write",
    "channels:manage",
    "channels:read",
    "channels:history",
    "channels:write.invites",
    "channels:write.topic",
    "users:read",
)
EVENTS: tuple[str, ...] = ()


def slash_commands(runbooks: Catalogue) -> list[SlashCommand]:
    checklists = [r for r in runbooks.families().get("incident", []) if r.command and r.command.subcommand]
    return [
        SlashCommand(
            command="/incident",
            description="Declare and run an incident: channel, roles, updates, timeline, resolve",
            usage_hint="declare <p0|p1|p2|p3> <title> | update | severity | role | note | status | list | "
            "resolve",
            subcommands=[
                Subcommand(name="declare", usage="declare <p0|p1|p2|p3> <title>", summary="open an incident"),
                Subcommand(name="update", usage="update <text>", summary="post a status update"),
                Subcommand(name="severity", usage="severity <p0|p1|p2|p3>", summary="change the severity"),
                Subcommand(
                    name="role", usage="role <commander|comms|scribe> @person", summary="assign a role"
                ),
                Subcommand(name="note", usage="note <text>", summary="add to the timeline"),
                Subcommand(name="status", usage="status", summary="the card again, with elapsed time"),
                Subcommand(name="list", usage="list", summary="open incidents"),
                Subcommand(name="timeline", usage="timeline", summary="what happened, in order"),
                Subcommand(name="resolve", usage="resolve <summary>", summary="close the incident"),
                *[
                    Subcommand(
                        name=r.command.subcommand or "", usage=r.command.subcommand or "", summary=r.title
                    )
                    for r in checklists
                    if r.command
                ],
            ],
        )
    ]


def register(app: AsyncApp, runtime: Runtime, catalogue: CommandCatalogue) -> None:
    service = runtime.incidents
    checklist_subcommands = {
        r.command.subcommand
        for r in runtime.runbooks.families().get("incident", [])
        if r.command and r.command.subcommand
    }

    async def tell(client: AsyncWebClient, channel: str, user: str, text: str) -> None:
        try:
            await client.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as exc:
            log.warning("ephemeral_failed", error=exc.response.get("error"))

    async def here(channel: str) -> Incident | None:
        return await service.store.in_channel(channel)

    @app.command("/incident")
    async def incident_command(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        command = parsing.parse(str(body.get("text") or ""), checklist_subcommands)
        user, channel = body["user_id"], body["channel_id"]
        if isinstance(command, parsing.Usage):
            await ack(response_type="ephemeral", text=command.text)
            return
        if isinstance(command, parsing.DeclareForm):
            await ack()
            await client.views_open(
                trigger_id=body["trigger_id"],
                view=render.declare_modal(command.severity, command.title, json.dumps({"channel": channel})),
            )
            return
        if isinstance(command, parsing.Declare):
            await ack(
                response_type="ephemeral",
                text=f"Declaring {command.severity.upper()} *{escape(command.title)}*…",
            )
            runtime.tasks.spawn(
                declare(client, user, channel, command.severity, command.title, None, False),
                name="incident:declare",
            )
            return
        if isinstance(command, parsing.Runbook):
            request = parse_family("incident", f"{command.subcommand} {command.rest}", runtime.runbooks)
            if not isinstance(request, RunRequest):
                await ack(response_type="ephemeral", text=request.text)
                return
            await ack(
                response_type="ephemeral", text="Running the checklist… the result will be posted here."
            )
            runtime.tasks.spawn(
                deliver_diagnosis(
                    runtime, request, client, respond, user=user, channel=channel, thread_ts=None
                ),
                name="incident:checklist",
            )
            return
        await ack()
        runtime.tasks.spawn(
            simple(command, client, user, channel, body.get("trigger_id")), name="incident:command"
        )

    async def declare(
        client: AsyncWebClient,
        user: str,
        channel: str,
        severity: str,
        title: str,
        service_name: str | None,
        security: bool,
    ) -> None:
        try:
            incident = await service.declare(
                title=title, severity=severity, user=user, service=service_name, security_sensitive=security
            )
        except IncidentError as exc:
            await tell(client, channel, user, str(exc))
            return
        await run_severity_diagnosis(client, incident, user)

    async def run_severity_diagnosis(client: AsyncWebClient, incident: Incident, user: str) -> None:
        runbook_id = service.severities[incident.severity].diagnosis_runbook
        if runbook_id is None or runtime.runbooks.get(runbook_id) is None or incident.channel_id is None:
            return
        request = RunRequest(runbook_id=runbook_id, params={})
        diagnosis = await deliver_diagnosis(
            runtime, request, client, None, user=user, channel=incident.channel_id, thread_ts=None
        )
        if diagnosis is not None:
            await service.store.add_event(
                incident.id,
                kind="diagnosis",
                actor=user,
                source_key=f"diagnosis:{diagnosis.run_id}",
                text=f"Diagnosis {runbook_id}: {diagnosis.overall.upper()}",
                details={"run_id": diagnosis.run_id, "overall": diagnosis.overall},
            )

    async def simple(
        command: parsing.Simple, client: AsyncWebClient, user: str, channel: str, trigger_id: str | None
    ) -> None:
        if command.verb == "list":
            await tell(client, channel, user, render.list_text(await service.store.open_incidents()))
            return
        incident = await here(channel)
        if incident is None:
            await tell(
                client,
                channel,
                user,
                f"`/incident {command.verb}` works inside an incident channel. `/incident list` shows them.",
            )
            return
        try:
            await run_simple(command, incident, client, user, channel, trigger_id)
        except IncidentError as exc:
            await tell(client, channel, user, str(exc))

    async def run_simple(
        command: parsing.Simple,
        incident: Incident,
        client: AsyncWebClient,
        user: str,
        channel: str,
        trigger_id: str | None,
    ) -> None:
        if command.verb == "status":
            waiting = len(await runtime.approvals.store.pending_in(channel))
            await client.chat_postMessage(
                channel=channel,
                text=render.card_text(incident),
                blocks=render.card(incident, open_approvals=waiting),
            )
        elif command.verb == "timeline":
            await tell(
                client,
                channel,
                user,
                render.timeline_text(incident, await service.store.timeline(incident.id)),
            )
        elif command.verb == "postmortem":
            await publish_review(runtime, client, incident, user)
        elif command.verb == "update":
            await service.post_update(incident, command.text, user)
        elif command.verb == "note":
            await service.note(
                incident, command.text, user, key=trigger_id or render.elapsed(incident.declared_at)
            )
            await tell(client, channel, user, "Added to the timeline.")
        elif command.verb == "severity":
            await service.set_severity(incident, command.text, user)
        elif command.verb == "root-cause":
            await service.store.set_root_cause(incident.id, command.text)
            await service.store.add_event(
                incident.id,
                kind="root_cause",
                actor=user,
                source_key="root_cause",
                text=f"Root cause: {command.text}",
            )
            await tell(client, channel, user, "Root cause recorded.")
        elif command.verb == "role":
            assert command.user is not None
            await require_user(client, command.user)
            await service.set_role(incident, command.text, command.user, user)
        elif command.verb == "resolve":
            await resolve(client, incident, user, channel, command.text, trigger_id)

    async def require_user(client: AsyncWebClient, user: str) -> None:
        try:
            response = await client.users_info(user=user)
        except SlackApiError:
            raise IncidentError(
                "I don't know that person. Usage: `/incident role <commander|comms|scribe> @person`."
            ) from None
        if response["user"].get("deleted"):
            raise IncidentError("That account is deactivated.")

    async def resolve(
        client: AsyncWebClient,
        incident: Incident,
        user: str,
        channel: str,
        summary: str,
        trigger_id: str | None,
    ) -> None:
        if not summary or not incident.root_cause:
            if trigger_id is None:
                raise IncidentError(
                    "Give a summary and record the root cause: `/incident root-cause <text>`."
                )
            await client.views_open(
                trigger_id=trigger_id,
                view=render.text_modal(
                    render.RESOLVE_VIEW,
                    "Resolve incident",
                    "Summary, and the root cause if known",
                    json.dumps({"incident": incident.id, "summary": summary}),
                    "Resolve",
                    initial=summary,
                ),
            )
            return
        await service.resolve(incident, summary, user)

    @app.view(render.DECLARE_VIEW)
    async def declare_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        values = view["state"]["values"]
        severity = (values["severity"]["severity"].get("selected_option") or {}).get("value") or ""
        title = str(values["title"]["title"].get("value") or "").strip()
        if severity not in SEVERITIES or not title:
            await ack(
                response_action="errors", errors={"title": "Pick a severity and describe what is happening."}
            )
            return
        await ack()
        service_name = (values.get("service", {}).get("service", {}).get("value") or "").strip() or None
        security = bool(values.get("security", {}).get("security", {}).get("selected_options"))
        channel = json.loads(view.get("private_metadata") or "{}").get("channel", "")
        runtime.tasks.spawn(
            declare(client, body["user"]["id"], channel, severity, title, service_name, security),
            name="incident:declare",
        )

    @app.view(render.RESOLVE_VIEW)
    async def resolve_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        text = str(view["state"]["values"]["text"]["text"].get("value") or "").strip()
        if len(text) < 3:
            await ack(response_action="errors", errors={"text": "Say in a few words how it was resolved."})
            return
        await ack()
        meta = json.loads(view["private_metadata"])
        incident = await service.store.get(str(meta["incident"]))
        if incident is None or incident.status == "resolved":
            return
        if not incident.root_cause:
            await service.store.set_root_cause(incident.id, text)
            incident = await service.store.get(incident.id) or incident
        try:
            await service.resolve(incident, meta.get("summary") or text, body["user"]["id"])
        except IncidentError as exc:
            log.info("resolve_refused", error=str(exc))

    @app.view(render.UPDATE_VIEW)
    async def update_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        text = str(view["state"]["values"]["text"]["text"].get("value") or "").strip()
        if not text:
            await ack(response_action="errors", errors={"text": "Write the update."})
            return
        await ack()
        incident = await service.store.get(str(view["private_metadata"]))
        if incident is not None:
            runtime.tasks.spawn(
                post_update(client, incident, text, body["user"]["id"]), name="incident:update"
            )

    async def post_update(client: AsyncWebClient, incident: Incident, text: str, user: str) -> None:
        try:
            await service.post_update(incident, text, user)
        except IncidentError as exc:  # resolved while the form was open
            if incident.channel_id is not None:
                await tell(client, incident.channel_id, user, str(exc))

    @app.action(
        re.compile(
            rf"^({render.RUN_DIAGNOSIS}|{render.POST_UPDATE}|{render.RESOLVE}|{render.PAGE}"
            rf"|{render.CLAIM}:({'|'.join(parsing.ROLES)})|{render.SNOOZE}:[0-9]{{1,4}})$"
        )
    )
    async def card_button(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        action = body["actions"][0]
        user, channel = body["user"]["id"], body["channel"]["id"]
        incident = await service.store.get(str(action.get("value") or ""))
        if incident is None or incident.channel_id != channel:
            await tell(client, channel, user, "That card no longer belongs to an open incident here.")
            return
        action_id = str(action["action_id"])
        if action_id == render.POST_UPDATE:
            await client.views_open(
                trigger_id=body["trigger_id"],
                view=render.text_modal(
                    render.UPDATE_VIEW, "Post an update", "What is the status now?", incident.id, "Post"
                ),
            )
        elif action_id == render.RESOLVE:
            await resolve(client, incident, user, channel, "", body["trigger_id"])
        elif action_id == render.RUN_DIAGNOSIS:
            runtime.tasks.spawn(run_severity_diagnosis(client, incident, user), name="incident:diagnose")
        elif action_id == render.PAGE:
            runtime.tasks.spawn(page(client, incident, user, channel), name="incident:page")
        elif action_id.startswith(render.SNOOZE):
            minutes = int(action_id.split(":", 1)[1])
            runtime.tasks.spawn(service.snooze(incident, minutes, user), name="incident:snooze")
            await tell(client, channel, user, f"Reminder snoozed for {minutes} minutes.")
        else:
            role = action_id.split(":", 1)[1]
            runtime.tasks.spawn(service.set_role(incident, role, user, user), name="incident:claim")

    async def page(client: AsyncWebClient, incident: Incident, user: str, channel: str) -> None:
        if not service.pager.configured:
            await tell(
                client,
                channel,
                user,
                "Paging is not configured: set OPSBOT_PAGERDUTY_ROUTING_KEY "
                "(a PagerDuty Events API v2 integration key) and restart opsbot.",
            )
            return
        result = await service.page(incident, user)
        if result.ok:
            await client.chat_postMessage(
                channel=channel, text=f"📟 <@{user}> paged on-call for {incident.id}."
            )
        else:
            await tell(client, channel, user, f"The page did not go out: {result.error}")

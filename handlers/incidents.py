"""`/incident`, the incident card's buttons and the declare / resolve / update forms.

Each listener parses (through the `/incident` verb table), acks, and calls one `IncidentService`
method; the 📌 timeline lives in `timeline.py`, review drafts in `reviews.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable

from bot.commands import SlashCommand, Usage
from bot.incidents import commands as parsing
from bot.incidents.severity import SEVERITIES, SYMPTOM_RUNBOOKS
from bot.incidents.store import Incident
from bot.mrkdwn import escape
from bot.render import incident as render
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.commands import RunRequest, parse_family
from bot.services.incidents import IncidentService
from bot.slack.asker import Asker
from handlers.listening import Delivery, Listeners

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
CARD_BUTTONS = re.compile(
    rf"^({render.RUN_DIAGNOSIS}|{render.POST_UPDATE}|{render.RESOLVE}|{render.PAGE}"
    rf"|{render.CLAIM}:({'|'.join(parsing.ROLES)})|{render.SNOOZE}:[0-9]{{1,4}})$"
)


def slash_commands(runbooks: Catalogue) -> list[SlashCommand]:
    return [parsing.incident_command(runbooks)]


async def incident_command(delivery: Delivery) -> None:
    services = delivery.services
    table = delivery.commands.get("/incident")
    assert table is not None
    command = parsing.parse(delivery.text, table)
    asker = delivery.asker
    if isinstance(command, Usage):
        await delivery.ack(response_type="ephemeral", text=command.text)
    elif isinstance(command, parsing.DeclareForm):
        await delivery.ack()
        await services.incidents.open_declare_form(asker, command.severity, command.title)
    elif isinstance(command, parsing.Declare):
        await delivery.ack(
            response_type="ephemeral", text=f"Declaring {command.severity.upper()} *{escape(command.title)}*…"
        )
        work = services.incidents.declare_and_diagnose(
            asker, title=command.title, severity=command.severity, symptom=command.symptom
        )
        delivery.spawn(work, name="incident:declare")
    elif isinstance(command, parsing.Checklist):
        request = parse_family("incident", f"{command.subcommand} {command.rest}", services.catalogue)
        if not isinstance(request, RunRequest):
            await delivery.ack(response_type="ephemeral", text=request.text)
            return
        await delivery.ack(
            response_type="ephemeral", text="Running the checklist… the result will be posted here."
        )
        work_ = services.diagnoses.deliver(request, channel=asker.channel or asker.user, asker=asker)
        delivery.spawn(work_, name="incident:checklist")
    else:
        await delivery.ack()
        delivery.spawn(_simple(delivery, command), name=f"incident:{command.verb}")


async def _simple(delivery: Delivery, command: parsing.Simple) -> None:
    """The verbs that work on the incident of this channel (and `list`, which does not need one)."""
    incidents, asker = delivery.services.incidents, delivery.asker
    if command.verb == "list":
        await incidents.list_open(asker)
        return
    incident = incidents.required(await delivery.incident(), command.verb)
    await _VERBS[command.verb](incidents, incident, command, delivery)


SimpleVerb = Callable[[IncidentService, Incident, parsing.Simple, Delivery], Awaitable[object]]
_VERBS: dict[str, SimpleVerb] = {
    "status": lambda s, i, c, d: s.show_card(i, d.asker),
    "timeline": lambda s, i, c, d: s.show_timeline(i, d.asker),
    "postmortem": lambda s, i, c, d: d.services.reviews.publish(i, d.asker.user),
    "update": lambda s, i, c, d: s.post_update(i, c.text, d.asker.user),
    "note": lambda s, i, c, d: s.add_note(i, c.text, d.asker),
    "severity": lambda s, i, c, d: s.set_severity(i, c.text, d.asker.user),
    "root-cause": lambda s, i, c, d: s.set_root_cause(i, c.text, d.asker),
    "role": lambda s, i, c, d: s.assign_role(i, c.text, c.user or "", d.asker.user),
    "resolve": lambda s, i, c, d: s.resolve_or_ask(i, c.text, d.asker),
}


async def declare_submitted(delivery: Delivery) -> None:
    values = delivery.view["state"]["values"]
    severity = (values["severity"]["severity"].get("selected_option") or {}).get("value") or ""
    title = str(values["title"]["title"].get("value") or "").strip()
    if severity not in SEVERITIES or not title:
        await delivery.ack(
            response_action="errors", errors={"title": "Pick a severity and describe what is happening."}
        )
        return
    await delivery.ack()
    service = (values.get("service", {}).get("service", {}).get("value") or "").strip() or None
    security = bool(values.get("security", {}).get("security", {}).get("selected_options"))
    symptom = (values.get("symptom", {}).get("symptom", {}).get("selected_option") or {}).get("value")
    channel = json.loads(delivery.view.get("private_metadata") or "{}").get("channel") or None
    asker = Asker(user=delivery.asker.user, channel=channel)
    work = delivery.services.incidents.declare_and_diagnose(
        asker,
        title=title,
        severity=severity,
        service=service,
        security_sensitive=security,
        symptom=symptom if symptom in SYMPTOM_RUNBOOKS else None,
    )
    delivery.spawn(work, name="incident:declare", answer=asker)


async def resolve_submitted(delivery: Delivery) -> None:
    values = delivery.view["state"]["values"]
    summary = str(values["summary"]["summary"].get("value") or "").strip()
    root_cause = str(values["root_cause"]["root_cause"].get("value") or "").strip()
    errors = {}
    if len(summary) < 3:
        errors["summary"] = "Say in a few words how it was resolved."
    if len(root_cause) < 3:
        errors["root_cause"] = "Say what caused it (your best understanding now)."
    if errors:
        await delivery.ack(response_action="errors", errors=errors)
        return
    await delivery.ack()
    meta = json.loads(delivery.view.get("private_metadata") or "{}")
    user = delivery.asker.user
    work = delivery.services.incidents.resolve_from_form(str(meta.get("incident")), summary, root_cause, user)
    delivery.spawn(work, name="incident:resolve", answer=Asker(user=user, channel=meta.get("channel")))


async def update_submitted(delivery: Delivery) -> None:
    text = str(delivery.view["state"]["values"]["text"]["text"].get("value") or "").strip()
    if not text:
        await delivery.ack(response_action="errors", errors={"text": "Write the update."})
        return
    await delivery.ack()
    meta = json.loads(delivery.view.get("private_metadata") or "{}")
    user = delivery.asker.user
    work = delivery.services.incidents.update_from_form(str(meta.get("incident")), text, user)
    delivery.spawn(work, name="incident:update", answer=Asker(user=user, channel=meta.get("channel")))


async def card_button(delivery: Delivery) -> None:
    await delivery.ack()
    incidents, asker = delivery.services.incidents, delivery.asker
    incident = await incidents.on_card(str(delivery.action.get("value") or ""), asker.channel)
    action_id = str(delivery.action["action_id"])
    if action_id == render.POST_UPDATE:
        await incidents.open_update_form(incident, asker)
    elif action_id == render.RESOLVE:
        await incidents.resolve_or_ask(incident, "", asker)
    elif action_id == render.RUN_DIAGNOSIS:
        delivery.spawn(incidents.run_diagnosis(incident, asker.user), name="incident:diagnose")
    elif action_id == render.PAGE:
        delivery.spawn(incidents.page_on_call(incident, asker), name="incident:page")
    elif action_id.startswith(render.SNOOZE):
        minutes = int(action_id.split(":", 1)[1])
        delivery.spawn(incidents.snooze_reminder(incident, minutes, asker), name="incident:snooze")
    else:
        role = action_id.split(":", 1)[1]
        delivery.spawn(incidents.set_role(incident, role, asker.user, asker.user), name="incident:claim")


def listeners(runbooks: Catalogue) -> Listeners:
    return Listeners(
        commands={"/incident": incident_command},
        actions=[(CARD_BUTTONS, card_button)],
        views={
            render.DECLARE_VIEW: declare_submitted,
            render.RESOLVE_VIEW: resolve_submitted,
            render.UPDATE_VIEW: update_submitted,
        },
    )

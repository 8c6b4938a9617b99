"""views.* methods: open/push exchange a trigger_id, update/publish address existing surfaces."""

from __future__ import annotations

from localslack.errors import SlackError
from localslack.model import JSON
from localslack.views import (
    ViewSpec,
    find_view,
    open_modal,
    parse_view,
    publish_home,
    push_modal,
    update_view,
)
from localslack.webapi.registry import Call, api_method


def _spec(call: Call) -> ViewSpec:
    if call.args.get("view") in (None, ""):
        raise SlackError("invalid_arguments", messages=["[ERROR] missing required field: view"])
    return parse_view(call.args["view"])


def _trigger_user(call: Call) -> str:
    trigger_id = call.get("trigger_id") or call.get("interactivity_pointer")
    if not trigger_id:
        raise SlackError("invalid_arguments", messages=["[ERROR] missing required field: trigger_id"])
    return call.core.triggers.exchange(trigger_id)


@api_method("views.open")
def views_open(call: Call) -> JSON:
    spec = _spec(call)
    return {"view": open_modal(call.state, _trigger_user(call), spec).to_api()}


@api_method("views.push")
def views_push(call: Call) -> JSON:
    spec = _spec(call)
    return {"view": push_modal(call.state, _trigger_user(call), spec).to_api()}


@api_method("views.update")
def views_update(call: Call) -> JSON:
    spec = _spec(call)
    view = find_view(call.state, call.get("view_id"), call.get("external_id"))
    return {"view": update_view(view, spec, call.get("hash")).to_api()}


@api_method("views.publish")
def views_publish(call: Call) -> JSON:
    user = call.user("user_id")
    return {"view": publish_home(call.state, user.id, _spec(call)).to_api()}

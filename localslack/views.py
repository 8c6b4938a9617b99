"""Modal and Home tab lifecycle: validation, the per-user modal stack, updates with hash checks."""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from localslack.blockkit import VIEW_MAX_BLOCKS, Checker, assign_ids, validate_blocks
from localslack.compose import decode_json
from localslack.errors import SlackError
from localslack.model import JSON, View
from localslack.state import Workspace

MAX_STACK = 3


class ViewSpec(BaseModel):
    """A view payload as the app sends it (views.* or a response_action)."""

    model_config = ConfigDict(extra="allow")

    type: str
    blocks: list[JSON]
    title: JSON | None = None
    submit: JSON | None = None
    close: JSON | None = None
    callback_id: str = ""
    private_metadata: str = ""
    external_id: str = ""
    clear_on_close: bool = False
    notify_on_close: bool = False


def validate_view(view: Any) -> list[str]:
    """Checks a modal/home view payload; pointers are rooted at /view as in views.* errors."""
    c = Checker()
    v = c.obj(view, "/view")
    if v is None:
        return c.errors
    vtype = v.get("type")
    if vtype not in ("modal", "home"):
        c.err("must be one of: modal, home", "/view/type")
    if vtype == "modal":
        c.text(v, "title", "/view", limit=24, required=True, plain_only=True)
        c.text(v, "submit", "/view", limit=24, plain_only=True)
        c.text(v, "close", "/view", limit=24, plain_only=True)
        blocks = v.get("blocks")
        has_input = isinstance(blocks, list) and any(
            isinstance(b, dict) and b.get("type") == "input" for b in blocks
        )
        if has_input and "submit" not in v:
            c.err("must provide submit when the view has input blocks", "/view")
    c.string(v, "private_metadata", "/view", limit=3000)
    c.string(v, "callback_id", "/view", limit=255)
    c.string(v, "external_id", "/view", limit=255)
    if "blocks" not in v:
        c.err("missing required field: blocks", "/view")
    else:
        c.errors.extend(validate_blocks(v["blocks"], max_blocks=VIEW_MAX_BLOCKS, base="/view/blocks"))
    return c.errors


def parse_view(raw: Any) -> ViewSpec:
    value = decode_json(raw, "invalid_arguments")
    errors = validate_view(value)
    if errors:
        raise SlackError("invalid_arguments", messages=[f"[ERROR] {e}" for e in errors])
    try:
        spec = ViewSpec.model_validate(value)
    except ValidationError as exc:
        raise SlackError("invalid_arguments", messages=[f"[ERROR] {exc}"]) from None
    assign_ids(spec.blocks)
    return spec


def _apply(view: View, spec: ViewSpec) -> None:
    view.type, view.blocks, view.title, view.submit, view.close = (
        spec.type,
        spec.blocks,
        spec.title,
        spec.submit,
        spec.close,
    )
    view.callback_id, view.private_metadata, view.external_id = (
        spec.callback_id,
        spec.private_metadata,
        spec.external_id,
    )
    view.clear_on_close, view.notify_on_close = spec.clear_on_close, spec.notify_on_close
    view.hash = f"{secrets.randbelow(10**10)}.{secrets.token_hex(4)}"
    view.state_values = {}


def _new(state: Workspace, user: str, spec: ViewSpec) -> View:
    if spec.external_id and any(
        v.external_id == spec.external_id and not v.closed for v in state.views.values()
    ):
        raise SlackError("duplicate_external_id")
    view = View(
        id=state.ids.new("V"),
        team_id=state.team_id,
        user=user,
        app_id=state.app.app_id,
        bot_id=state.bot_id,
        type=spec.type,
        blocks=[],
        hash="",
    )
    _apply(view, spec)
    state.views[view.id] = view
    return view


def open_modal(state: Workspace, user: str, spec: ViewSpec) -> View:
    """Opening replaces whatever modal stack the user had, as a new trigger does in the client."""
    if spec.type != "modal":
        raise SlackError("invalid_arguments", messages=["[ERROR] views.open only opens modals"])
    for old in [state.views[v] for v in state.open_view_stack(user)]:
        state.close_view(old)
    view = _new(state, user, spec)
    view.root_view_id = view.id
    state.open_view_stack(user).append(view.id)
    return view


def push_modal(state: Workspace, user: str, spec: ViewSpec) -> View:
    stack = state.open_view_stack(user)
    if len(stack) >= MAX_STACK:
        raise SlackError("push_limit_reached")
    view = _new(state, user, spec)
    if stack:
        view.previous_view_id = stack[-1]
        view.root_view_id = state.views[stack[0]].id
    else:
        view.root_view_id = view.id
    stack.append(view.id)
    return view


def find_view(state: Workspace, view_id: str | None, external_id: str | None) -> View:
    if view_id:
        view = state.views.get(view_id)
    else:
        view = next((v for v in state.views.values() if external_id and v.external_id == external_id), None)
    if view is None:
        raise SlackError("not_found")
    return view


def update_view(view: View, spec: ViewSpec, expected_hash: str | None = None) -> View:
    if expected_hash and expected_hash != view.hash:
        raise SlackError("hash_conflict")
    _apply(view, spec)
    return view


def publish_home(state: Workspace, user: str, spec: ViewSpec) -> View:
    if spec.type != "home":
        raise SlackError("invalid_arguments", messages=["[ERROR] views.publish only publishes home views"])
    existing = state.home_views.get(user)
    if existing is not None:
        return update_view(state.views[existing], spec)
    view = _new(state, user, spec)
    state.home_views[user] = view.id
    return view

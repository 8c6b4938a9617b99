"""Block Kit validation with Slack's limits and its json-pointer error strings."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100
MARKDOWN_BLOCK_TOTAL = 12_000

# Block types the SDK models know; the exotic ones are accepted without field checks.
_LOOSE_BLOCKS = {
    "call",
    "table",
    "task_card",
    "plan",
    "alert",
    "card",
    "container",
    "carousel",
    "auth_provider",
    "context_actions",
    "video",
    "file",
}

_SELECTS = {"static_select", "external_select", "users_select", "conversations_select", "channels_select"}
_MULTI_SELECTS = {f"multi_{s}" for s in _SELECTS}
_TEXT_INPUTS = {
    "plain_text_input",
    "email_text_input",
    "url_text_input",
    "number_input",
    "rich_text_input",
    "file_input",
}
_CHOICES = {"checkboxes", "radio_buttons"}
_PICKERS = {"datepicker", "timepicker", "datetimepicker"}
ACTION_ELEMENTS = {
    "button",
    "overflow",
    "workflow_button",
    "feedback_buttons",
    "icon_button",
    *_SELECTS,
    *_MULTI_SELECTS,
    *_CHOICES,
    *_PICKERS,
    "rich_text_input",
}
ACCESSORY_ELEMENTS = {
    "button",
    "overflow",
    "workflow_button",
    "image",
    *_SELECTS,
    *_MULTI_SELECTS,
    *_CHOICES,
    *_PICKERS,
    "plain_text_input",
}
INPUT_ELEMENTS = {*_SELECTS, *_MULTI_SELECTS, *_TEXT_INPUTS, *_CHOICES, *_PICKERS}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}$")


class Checker:
    """Collects Slack-style error strings while walking a payload."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def err(self, message: str, ptr: str) -> None:
        self.errors.append(f"{message} [json-pointer:{ptr}]")

    def obj(self, value: Any, ptr: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.err("must be an object", ptr)
            return None
        return value

    def string(
        self,
        parent: dict[str, Any],
        key: str,
        ptr: str,
        *,
        limit: int | None = None,
        required: bool = False,
        min_len: int = 0,
    ) -> None:
        if key not in parent:
            if required:
                self.err(f"missing required field: {key}", ptr)
            return
        value = parent[key]
        here = f"{ptr}/{key}"
        if not isinstance(value, str):
            self.err("must be a string", here)
        elif limit is not None and len(value) > limit:
            self.err(f"must be less than {limit + 1} characters", here)
        elif len(value) < min_len:
            self.err(f"must be more than {min_len - 1} characters", here)

    def array(
        self,
        parent: dict[str, Any],
        key: str,
        ptr: str,
        *,
        limit: int,
        required: bool = False,
        min_items: int = 0,
    ) -> list[Any]:
        if key not in parent:
            if required:
                self.err(f"missing required field: {key}", ptr)
            return []
        value = parent[key]
        here = f"{ptr}/{key}"
        if not isinstance(value, list):
            self.err("must be an array", here)
            return []
        if len(value) > limit:
            self.err(f"no more than {limit} items allowed", here)
        elif len(value) < min_items:
            self.err(f"must provide at least {min_items} items", here)
        return value

    def text(
        self,
        parent: dict[str, Any],
        key: str,
        ptr: str,
        *,
        limit: int,
        required: bool = False,
        plain_only: bool = False,
    ) -> None:
        if key not in parent:
            if required:
                self.err(f"missing required field: {key}", ptr)
            return
        here = f"{ptr}/{key}"
        obj = self.obj(parent[key], here)
        if obj is None:
            return
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if obj.get("type") not in allowed:
            self.err(f"must be one of the following types: {', '.join(allowed)}", f"{here}/type")
        self.string(obj, "text", here, limit=limit, required=True, min_len=1)

    def ident(self, parent: dict[str, Any], key: str, ptr: str) -> None:
        self.string(parent, key, ptr, limit=255)

    def unique(self, seen: set[str], parent: Any, key: str, ptr: str) -> None:
        """Slack refuses a block_id repeated in a message or view, and an action_id repeated in a block."""
        value = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(value, str):
            return
        if value in seen:
            self.err(f'duplicate {key} "{value}"', f"{ptr}/{key}")
        seen.add(value)

    def confirm(self, parent: dict[str, Any], ptr: str) -> None:
        if "confirm" not in parent:
            return
        here = f"{ptr}/confirm"
        c = self.obj(parent["confirm"], here)
        if c is None:
            return
        self.text(c, "title", here, limit=100, required=True, plain_only=True)
        self.text(c, "text", here, limit=300, required=True)
        self.text(c, "confirm", here, limit=30, required=True, plain_only=True)
        self.text(c, "deny", here, limit=30, required=True, plain_only=True)
        if "style" in c and c["style"] not in ("primary", "danger"):
            self.err("must be one of: primary, danger", f"{here}/style")

    def options(
        self,
        parent: dict[str, Any],
        key: str,
        ptr: str,
        *,
        limit: int,
        required: bool = False,
        mrkdwn: bool = False,
    ) -> None:
        for i, raw in enumerate(self.array(parent, key, ptr, limit=limit, required=required, min_items=1)):
            here = f"{ptr}/{key}/{i}"
            opt = self.obj(raw, here)
            if opt is None:
                continue
            self.text(opt, "text", here, limit=75, required=True, plain_only=not mrkdwn)
            self.string(opt, "value", here, limit=150, required=True)
            self.text(opt, "description", here, limit=75, plain_only=not mrkdwn)
            self.string(opt, "url", here, limit=3000)

    def element(self, raw: Any, ptr: str, allowed: set[str]) -> None:
        el = self.obj(raw, ptr)
        if el is None:
            return
        etype = el.get("type")
        if etype == "image":
            self.string(el, "alt_text", ptr, limit=2000, required=True)
            if "image_url" not in el and "slack_file" not in el:
                self.err("missing required field: image_url", ptr)
            self.string(el, "image_url", ptr, limit=3000)
            return
        if etype not in allowed:
            self.err("failed to match all allowed schemas", ptr)
            return
        self.ident(el, "action_id", ptr)
        self.confirm(el, ptr)
        check = _ELEMENT_CHECKS.get(str(etype))
        if check is not None:
            check(self, el, ptr)


def _button(c: Checker, el: dict[str, Any], ptr: str) -> None:
    c.text(el, "text", ptr, limit=75, required=True, plain_only=True)
    c.string(el, "value", ptr, limit=2000)
    c.string(el, "url", ptr, limit=3000)
    c.string(el, "accessibility_label", ptr, limit=75)
    if "style" in el and el["style"] not in ("primary", "danger"):
        c.err("must be one of: primary, danger", f"{ptr}/style")


def _select(c: Checker, el: dict[str, Any], ptr: str) -> None:
    c.text(el, "placeholder", ptr, limit=150, plain_only=True)
    if el.get("type") in ("static_select", "multi_static_select"):
        if "options" in el or "option_groups" not in el:
            c.options(el, "options", ptr, limit=100, required="option_groups" not in el)
        for i, group in enumerate(c.array(el, "option_groups", ptr, limit=100)):
            if isinstance(group, dict):
                c.text(group, "label", f"{ptr}/option_groups/{i}", limit=75, required=True, plain_only=True)
                c.options(group, "options", f"{ptr}/option_groups/{i}", limit=100, required=True)
    if "max_selected_items" in el and (
        not isinstance(el["max_selected_items"], int) or el["max_selected_items"] < 1
    ):
        c.err("must be greater than 0", f"{ptr}/max_selected_items")


def _overflow(c: Checker, el: dict[str, Any], ptr: str) -> None:
    c.options(el, "options", ptr, limit=5, required=True)


def _choices(c: Checker, el: dict[str, Any], ptr: str) -> None:
    c.options(el, "options", ptr, limit=10, required=True, mrkdwn=True)


def _text_input(c: Checker, el: dict[str, Any], ptr: str) -> None:
    c.text(el, "placeholder", ptr, limit=150, plain_only=True)
    for key in ("min_length", "max_length"):
        if key in el and (not isinstance(el[key], int) or not 0 <= el[key] <= 3000):
            c.err("must be between 0 and 3000", f"{ptr}/{key}")
    c.string(el, "initial_value", ptr, limit=3000)


def _picker(c: Checker, el: dict[str, Any], ptr: str) -> None:
    c.text(el, "placeholder", ptr, limit=150, plain_only=True)
    if el.get("type") == "datepicker" and "initial_date" in el and not _DATE.match(str(el["initial_date"])):
        c.err("must match format YYYY-MM-DD", f"{ptr}/initial_date")
    if el.get("type") == "timepicker" and "initial_time" in el and not _TIME.match(str(el["initial_time"])):
        c.err("must match format HH:mm", f"{ptr}/initial_time")


_ELEMENT_CHECKS: dict[str, Callable[[Checker, dict[str, Any], str], None]] = {
    "button": _button,
    "overflow": _overflow,
    **{t: _select for t in _SELECTS | _MULTI_SELECTS},
    **{t: _choices for t in _CHOICES},
    **{t: _text_input for t in _TEXT_INPUTS},
    **{t: _picker for t in _PICKERS},
}


def _section(c: Checker, b: dict[str, Any], ptr: str) -> None:
    if "text" not in b and "fields" not in b:
        c.err("must provide either text or fields", ptr)
    c.text(b, "text", ptr, limit=3000)
    for i, f in enumerate(c.array(b, "fields", ptr, limit=10, min_items=1)):
        holder = {"field": f}
        c.text(holder, "field", f"{ptr}/fields/{i}", limit=2000)
    if "accessory" in b:
        c.element(b["accessory"], f"{ptr}/accessory", ACCESSORY_ELEMENTS)


def _header(c: Checker, b: dict[str, Any], ptr: str) -> None:
    c.text(b, "text", ptr, limit=150, required=True, plain_only=True)


def _context(c: Checker, b: dict[str, Any], ptr: str) -> None:
    for i, raw in enumerate(c.array(b, "elements", ptr, limit=10, required=True, min_items=1)):
        here = f"{ptr}/elements/{i}"
        if isinstance(raw, dict) and raw.get("type") in ("plain_text", "mrkdwn"):
            c.text({"t": raw}, "t", here, limit=3000)
        else:
            c.element(raw, here, set())


def _actions(c: Checker, b: dict[str, Any], ptr: str) -> None:
    action_ids: set[str] = set()
    for i, raw in enumerate(c.array(b, "elements", ptr, limit=25, required=True, min_items=1)):
        c.element(raw, f"{ptr}/elements/{i}", ACTION_ELEMENTS)
        c.unique(action_ids, raw, "action_id", f"{ptr}/elements/{i}")


def _image(c: Checker, b: dict[str, Any], ptr: str) -> None:
    c.string(b, "alt_text", ptr, limit=2000, required=True)
    if "image_url" not in b and "slack_file" not in b:
        c.err("missing required field: image_url", ptr)
    c.string(b, "image_url", ptr, limit=3000)
    c.text(b, "title", ptr, limit=2000, plain_only=True)


def _input(c: Checker, b: dict[str, Any], ptr: str) -> None:
    c.text(b, "label", ptr, limit=2000, required=True, plain_only=True)
    c.text(b, "hint", ptr, limit=2000, plain_only=True)
    if "element" not in b:
        c.err("missing required field: element", ptr)
    else:
        c.element(b["element"], f"{ptr}/element", INPUT_ELEMENTS)


def _rich_text(c: Checker, b: dict[str, Any], ptr: str) -> None:
    c.array(b, "elements", ptr, limit=10_000, required=True)


def _markdown(c: Checker, b: dict[str, Any], ptr: str) -> None:
    c.string(b, "text", ptr, limit=MARKDOWN_BLOCK_TOTAL, required=True, min_len=1)


def _divider(c: Checker, b: dict[str, Any], ptr: str) -> None:
    return None


_BLOCK_CHECKS: dict[str, Callable[[Checker, dict[str, Any], str], None]] = {
    "section": _section,
    "header": _header,
    "context": _context,
    "actions": _actions,
    "image": _image,
    "input": _input,
    "rich_text": _rich_text,
    "markdown": _markdown,
    "divider": _divider,
    **{t: _divider for t in _LOOSE_BLOCKS},
}


def validate_blocks(blocks: Any, *, max_blocks: int = MESSAGE_MAX_BLOCKS, base: str = "/blocks") -> list[str]:
    """Returns Slack-style error strings ("<reason> [json-pointer:/blocks/N/...]"); empty when valid."""
    c = Checker()
    if not isinstance(blocks, list):
        c.err("must be an array", base)
        return c.errors
    if len(blocks) > max_blocks:
        c.err(f"no more than {max_blocks} items allowed", base)
    markdown_total = 0
    block_ids: set[str] = set()
    for i, raw in enumerate(blocks):
        ptr = f"{base}/{i}"
        block = c.obj(raw, ptr)
        if block is None:
            continue
        check = _BLOCK_CHECKS.get(str(block.get("type")))
        if check is None:
            c.err("failed to match all allowed schemas", ptr)
            continue
        c.ident(block, "block_id", ptr)
        c.unique(block_ids, block, "block_id", ptr)
        check(c, block, ptr)
        if block.get("type") == "markdown" and isinstance(block.get("text"), str):
            markdown_total += len(block["text"])
    if markdown_total > MARKDOWN_BLOCK_TOTAL:
        c.err(f"markdown blocks must total less than {MARKDOWN_BLOCK_TOTAL + 1} characters", base)
    return c.errors


def assign_ids(blocks: list[Any]) -> list[Any]:
    """Slack stores a generated block_id/action_id wherever the sender left one out."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        block.setdefault("block_id", secrets.token_urlsafe(4))
        elements = list(block.get("elements", [])) if block.get("type") == "actions" else []
        elements += [block[k] for k in ("accessory", "element") if k in block]
        for el in elements:
            if isinstance(el, dict) and el.get("type") not in ("image", None):
                el.setdefault("action_id", secrets.token_urlsafe(4))
    return blocks

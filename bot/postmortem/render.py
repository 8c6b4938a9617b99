"""The draft as Markdown, through a Jinja2 template (the shipped one, or OPSBOT_REVIEW_TEMPLATE)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import jinja2

from bot.postmortem.builder import TO_FILL, ReviewDraft
from bot.postmortem.facts import Edits

_SECTION = re.compile(r"^## ([^\n]+)\n(.*?)(?=^## |^---$|\Z)", re.M | re.S)
_USERS_AFFECTED = re.compile(r"^- Users affected: (.+)$", re.M)
# Slack's limit for a plain_text_input's initial value is the form's max_length.
_FIELD_LIMIT = 2000


def load_template(path: Path | None) -> jinja2.Template:
    source = (
        path.read_text(encoding="utf-8")
        if path is not None
        else resources.files("bot.postmortem").joinpath("templates/review.md.j2").read_text(encoding="utf-8")
    )
    # Markdown, not HTML: escaping would mangle it; the values are already redacted plain text.
    environment = jinja2.Environment(
        autoescape=False,  # noqa: S701
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.from_string(source)


def render_markdown(draft: ReviewDraft, template: jinja2.Template) -> str:
    return template.render(draft=draft)


def draft_edits(markdown: str) -> Edits:
    """What a draft says for the fields of the edit form, to open it prefilled; a section the draft
    left to fill stays empty (its prompt is not text anyone wrote). Works on the shipped template's
    `## Summary` / `## Root Cause` sections; a custom template without them prefills nothing."""
    sections = {m.group(1).strip(): m.group(2).strip() for m in _SECTION.finditer(markdown)}
    users = _USERS_AFFECTED.search(sections.get("Impact", ""))

    def written(text: str | None) -> str | None:
        return text[:_FIELD_LIMIT] if text and TO_FILL not in text else None

    return Edits(
        summary=written(sections.get("Summary")),
        root_cause=written(sections.get("Root Cause")),
        users_affected=written(users.group(1).strip() if users else None),
    )

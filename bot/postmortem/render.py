"""The draft as Markdown, through a Jinja2 template (the shipped one, or OPSBOT_REVIEW_TEMPLATE)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import jinja2

from bot.postmortem.builder import ReviewDraft


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

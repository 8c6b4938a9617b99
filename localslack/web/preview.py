"""Server-side Markdown for the page: file previews (other text shown verbatim) and markdown blocks."""

from __future__ import annotations

import html

from markdown_it import MarkdownIt

from localslack.model import File

MARKDOWN_TYPES = frozenset({"md", "markdown"})
TEXT_TYPES = frozenset({"txt", "text", "log", "csv", "json", "yaml", "yml"})
MAX_PREVIEW_BYTES = 200_000
TRUNCATED = '<p class="preview-cut">Preview truncated; download the file for all of it.</p>'

# No raw HTML passes through; images are off because an external one would make the browser fetch it.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).disable("image")


def markdown_html(text: str) -> str:
    return str(_MARKDOWN.render(text))


def preview_html(file: File) -> str | None:
    """Safe HTML for the file's preview, or None when Slack would show only a file card."""
    if file.filetype not in MARKDOWN_TYPES | TEXT_TYPES:
        return None
    text = file.content[:MAX_PREVIEW_BYTES].decode("utf-8", "replace")
    cut = len(file.content) > MAX_PREVIEW_BYTES
    body = markdown_html(text) if file.filetype in MARKDOWN_TYPES else f"<pre>{html.escape(text)}</pre>"
    return body + (TRUNCATED if cut else "")

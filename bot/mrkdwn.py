"""Slack mrkdwn text helpers with no dependencies, usable by parsers, services and renderers alike."""

from __future__ import annotations


def escape(text: str) -> str:
    """Escape user-typed text for mrkdwn so it cannot become a mention, link or broadcast."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

"""The Slack-like web client: the page, its JSON API under /ui/api and its live event stream."""

from localslack.web.routes import ui_routes

__all__ = ["ui_routes"]

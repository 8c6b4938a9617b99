"""The one exception type that carries a Slack error name out of any layer."""

from __future__ import annotations


class SlackError(Exception):
    """An `ok: false` outcome: `code` is Slack's error name, `errors`/`messages` its optional details."""

    def __init__(
        self, code: str, *, errors: list[str] | None = None, messages: list[str] | None = None
    ) -> None:
        super().__init__(code if not errors else f"{code}: {errors}")
        self.code = code
        self.errors = errors
        self.messages = messages

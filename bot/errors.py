"""The one error type a person is shown: raised by services with the sentence to read.

Whatever front door a use case came through, a `UserError` is turned into one short ephemeral
message in one place (`bot.slack.asker.report_failure`); anything else is a bug and is logged.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the person should be told (not a bug): `message` says what and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

"""Request bodies of the web client's POST endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# What an input holds: an option value, a user id, a date, a datetime (epoch seconds), several, or nothing.
ElementValue = str | int | list[str] | None


class UserBody(BaseModel):
    """A body naming only who acts: closing a modal."""

    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, description="the acting user's name or id")


class CommandBody(UserBody):
    channel: str = Field(min_length=1)
    text: str = Field(min_length=2, description="the whole command line, e.g. '/incident list'")


class JoinBody(UserBody):
    channel: str = Field(min_length=1)


class MessageBody(UserBody):
    channel: str = Field(min_length=1)
    text: str
    thread_ts: str | None = None


class Container(BaseModel):
    """Where the clicked element lives, in the shape of Slack's block_actions container."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["message", "ephemeral", "view"]
    channel: str | None = None
    ts: str | None = None
    ephemeral_id: str | None = None
    view_id: str | None = None

    @model_validator(mode="after")
    def _addressed(self) -> Container:
        needed = {
            "message": ("channel", "ts"),
            "ephemeral": ("ephemeral_id",),
            "view": ("view_id",),
        }[self.type]
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            raise ValueError(f"a {self.type} container needs {', '.join(missing)}")
        return self


class ClickBody(UserBody):
    container: Container
    action_id: str = Field(min_length=1)
    block_id: str | None = None
    value: ElementValue = None


class SubmitBody(UserBody):
    values: dict[str, dict[str, ElementValue]] = Field(
        default_factory=dict, description="{block_id: {action_id: value}} for the view's inputs"
    )


class ReactionBody(UserBody):
    channel: str = Field(min_length=1)
    ts: str = Field(min_length=1)
    name: str = Field(min_length=1)
    add: bool = True


class PinBody(UserBody):
    channel: str = Field(min_length=1)
    ts: str = Field(min_length=1)
    add: bool = True

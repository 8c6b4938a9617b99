"""Method registry and the per-call argument accessors every Web API family uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from localslack.compose import decode_json
from localslack.core import Core
from localslack.errors import SlackError
from localslack.model import JSON, Channel, User
from localslack.state import NotFound, Workspace

TokenKind = Literal["bot", "app"]


@dataclass
class Call:
    """One Web API request: merged arguments plus the emulator it runs against."""

    core: Core
    method: str
    args: dict[str, Any]

    @property
    def state(self) -> Workspace:
        return self.core.state

    @property
    def actor(self) -> str:
        return self.state.bot_user_id

    def get(self, name: str) -> str | None:
        value = self.args.get(name)
        if value is None:
            return None
        return value if isinstance(value, str) else str(value)

    def need(self, name: str, code: str = "invalid_arguments") -> str:
        value = self.get(name)
        if value is None or value == "":
            raise SlackError(code, messages=[f"[ERROR] missing required field: {name}"])
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.args.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("1", "true", "yes")

    def number(self, name: str, default: int, *, low: int = 1, high: int | None = None) -> int:
        value = self.args.get(name)
        if value is None or value == "":
            return default
        try:
            n = int(value)
        except (TypeError, ValueError):
            raise SlackError("invalid_arguments", messages=[f"[ERROR] {name} must be an integer"]) from None
        n = max(n, low)
        return n if high is None else min(n, high)

    def structured(self, name: str, code: str = "invalid_arguments") -> Any:
        value = self.args.get(name)
        return None if value is None else decode_json(value, code)

    def user(self, name: str = "user", code: str = "user_not_found") -> User:
        return self.state.user(self.need(name, code))

    def channel(self, name: str = "channel", *, member: bool = False) -> Channel:
        """Private channels the bot is not in are invisible to it, exactly like missing ones."""
        ref = self.need(name, "channel_not_found")
        ch = self.state.channel(ref)
        visible = not ch.is_private or self.actor in ch.members
        if not visible:
            raise NotFound("channel_not_found", ref)
        if member and self.actor not in ch.members:
            raise SlackError("not_in_channel")
        return ch


Handler = Callable[[Call], JSON]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    handler: Handler
    token: TokenKind


METHODS: dict[str, MethodSpec] = {}


def api_method(name: str, *, token: TokenKind = "bot") -> Callable[[Handler], Handler]:  # noqa: S107
    def register(fn: Handler) -> Handler:
        METHODS[name] = MethodSpec(name=name, handler=fn, token=token)
        return fn

    return register

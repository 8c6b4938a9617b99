"""Typed runbook parameters and the parsing of what a person typed (`k=v` words and positionals).

Every value a runbook receives has passed through one of these types: enums and identifiers come
from allow-lists, numbers and durations are bounded, free strings need a pattern and a length.
Parsing never touches the network and raises `ParamError` with a message fit for Slack.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from bot.errors import UserError

NAME = r"^[a-z][a-z0-9_]{0,39}$"
_DURATION = re.compile(r"^(\d{1,6})(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_WORD = 200


class ParamError(UserError, ValueError):
    """A parameter value was missing, unknown or out of bounds; the message is shown to the user."""


def parse_duration(text: str) -> int:
    """'90s', '30m', '2h', '1d' → seconds."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ParamError(f"`{text[:40]}` is not a duration like 30s, 15m, 2h or 1d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_duration(seconds: int) -> str:
    for unit in ("d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class _Param(BaseModel):
    name: str = Field(pattern=NAME)
    description: str = Field("", max_length=300)
    required: bool = False

    def hint(self) -> str:
        raise NotImplementedError

    def parse(self, raw: str) -> Any:
        raise NotImplementedError

    def accept(self, value: Any) -> Any:
        """An already-typed value (a button's JSON, a stored request) checked against the same bounds
        as typed text, without turning it back into text."""
        if not isinstance(value, str):
            raise ParamError(f"`{self.name}` must be text")
        return self.parse(value)

    def default_value(self) -> Any:
        return getattr(self, "default", None)


class EnumParam(_Param):
    type: Literal["enum"]
    values: list[str] = Field(min_length=1)
    default: str | None = None

    def hint(self) -> str:
        return "|".join(self.values)

    def parse(self, raw: str) -> str:
        value = raw.strip().lower()
        if value not in self.values:
            raise ParamError(f"`{self.name}` must be one of {', '.join(self.values)}")
        return value


class IntParam(_Param):
    type: Literal["int"]
    min: int
    max: int
    default: int | None = None

    def hint(self) -> str:
        return f"{self.min}..{self.max}"

    def parse(self, raw: str) -> int:
        if not re.fullmatch(r"-?[0-9]{1,12}", raw.strip()):
            raise ParamError(f"`{self.name}` must be a whole number from {self.min} to {self.max}")
        return self.accept(int(raw))

    def accept(self, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ParamError(f"`{self.name}` must be a whole number from {self.min} to {self.max}")
        if not self.min <= value <= self.max:
            raise ParamError(f"`{self.name}` must be from {self.min} to {self.max}")
        return value


class DurationParam(_Param):
    """A length of time typed as 30s / 15m / 2h / 1d; the runbook receives whole seconds."""

    type: Literal["duration"]
    min: str = "1s"
    max: str = "7d"
    default: str | None = None

    @model_validator(mode="after")
    def _bounds(self) -> DurationParam:
        low, high = parse_duration(self.min), parse_duration(self.max)
        if low > high:
            raise ValueError("min is above max")
        if self.default is not None and not low <= parse_duration(self.default) <= high:
            raise ValueError("default is outside min..max")
        return self

    def hint(self) -> str:
        return f"{self.min}..{self.max}"

    def parse(self, raw: str) -> int:
        return self.accept(parse_duration(raw))

    def accept(self, value: Any) -> int:
        """Whole seconds, as `parse` returns them."""
        if not isinstance(value, int) or isinstance(value, bool):
            raise ParamError(f"`{self.name}` must be a duration like 30s, 15m, 2h or 1d")
        if not parse_duration(self.min) <= value <= parse_duration(self.max):
            raise ParamError(f"`{self.name}` must be from {self.min} to {self.max}")
        return value

    def default_value(self) -> int | None:
        return parse_duration(self.default) if self.default is not None else None


class IdentifierParam(_Param):
    """A name (service, database, table…) that must be on the runbook's allow-list."""

    type: Literal["identifier"]
    allowed: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]] = Field(min_length=1)
    default: str | None = None

    def hint(self) -> str:
        return "|".join(self.allowed) if len(self.allowed) <= 6 else f"one of {len(self.allowed)} names"

    def parse(self, raw: str) -> str:
        value = raw.strip()
        if value not in self.allowed:
            raise ParamError(f"`{self.name}` must be one of {', '.join(self.allowed[:20])}")
        return value


class StringParam(_Param):
    """Free text, only when the runbook gives a pattern and a length bound for it."""

    type: Literal["string"]
    pattern: str
    max_length: int = Field(ge=1, le=MAX_WORD)
    default: str | None = None

    @model_validator(mode="after")
    def _pattern_compiles(self) -> StringParam:
        re.compile(self.pattern)
        return self

    def hint(self) -> str:
        return "text"

    def parse(self, raw: str) -> str:
        if len(raw) > self.max_length:
            raise ParamError(f"`{self.name}` is longer than {self.max_length} characters")
        if not re.fullmatch(self.pattern, raw):
            raise ParamError(f"`{self.name}` has characters that are not allowed here")
        return raw


Param = Annotated[
    EnumParam | IntParam | DurationParam | IdentifierParam | StringParam, Field(discriminator="type")
]


def split_words(text: str) -> list[str]:
    """Split command text on whitespace; quotes are not special (nothing here is a shell)."""
    words = text.split()
    for word in words:
        if len(word) > MAX_WORD:
            raise ParamError(f"a word of {len(word)} characters is too long (at most {MAX_WORD})")
    return words


def bind_params(params: list[Param], words: list[str], positional: list[str] | None = None) -> dict[str, Any]:
    """Turn `k=v` words (and positionals, in the order the runbook names them) into typed values."""
    by_name = {p.name: p for p in params}
    raw: dict[str, str] = {}
    order = list(positional or [])
    for word in words:
        key, sep, value = word.partition("=")
        if sep:
            key = key.strip().lower()
            if key not in by_name:
                known = ", ".join(by_name) or "none"
                raise ParamError(f"unknown parameter `{key[:40]}` (parameters: {known})")
            if key in raw:
                raise ParamError(f"`{key}` is given twice")
            raw[key] = value
            continue
        while order and order[0] in raw:
            order.pop(0)
        if not order:
            raise ParamError(f"unexpected `{word[:40]}`: give parameters as name=value")
        raw[order.pop(0)] = word
    values: dict[str, Any] = {}
    for param in params:
        if param.name in raw:
            values[param.name] = param.parse(raw[param.name])
        elif param.default_value() is not None:
            values[param.name] = param.default_value()
        elif param.required:
            raise ParamError(f"`{param.name}` is required ({param.hint()})")
    return values


def validate_values(params: list[Param], values: dict[str, Any]) -> dict[str, Any]:
    """Typed values (from a button or a form's metadata) checked by the same parameter models as
    typed text: unknown names refused, bounds and allow-lists applied, defaults filled in."""
    by_name = {p.name: p for p in params}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise ParamError(f"unknown parameter `{unknown[0][:40]}`")
    checked: dict[str, Any] = {}
    for param in params:
        if param.name in values:
            checked[param.name] = param.accept(values[param.name])
        elif param.default_value() is not None:
            checked[param.name] = param.default_value()
        elif param.required:
            raise ParamError(f"`{param.name}` is required ({param.hint()})")
    return checked


def usage_for(params: list[Param], positional: list[str] | None = None) -> str:
    parts = []
    for name in positional or []:
        param = next(p for p in params if p.name == name)
        parts.append(f"<{name}>" if param.required else f"[{name}]")
    for param in params:
        if param.name not in (positional or []):
            parts.append(f"[{param.name}={param.hint()}]")
    return " ".join(parts)

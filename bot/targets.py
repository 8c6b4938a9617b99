"""The targets registry: the systems runbooks diagnose, by name, loaded from a YAML file.

Runbooks say `app_db` or `cache`; the file named by OPSBOT_TARGETS says what those names are.
Connection details usually come from the environment as `${NAME}` references, so the file itself
can be committed. Users never type a DSN or a URL in Slack: they can only pick a name that is here.

    targets:
      app_db:
        kind: postgres
        dsn: ${APP_DB_DSN}

Every secret the registry holds is a `SecretStr` (so it never shows in a repr or a log line), and
`Targets.secrets()` hands the raw values to the redactor that scrubs what the bot posts and logs.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from psycopg.conninfo import conninfo_to_dict
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from bot.yaml_config import ConfigFileError, Invalid, Location, load_yaml_model, validate_model

SETTING = "OPSBOT_TARGETS"
TARGET_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
TargetName = Annotated[str, StringConstraints(pattern=TARGET_NAME_PATTERN)]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Shorter strings are left alone by the redactor; replacing "ab" everywhere would mangle output.
_MIN_SECRET_LEN = 4


class TargetsError(ConfigFileError):
    """The targets file is missing or invalid; one `OPSBOT_TARGETS: file: field: message` line per problem."""


class UnknownTarget(LookupError):
    """A runbook or caller named a target the registry does not have."""


class _TargetBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field("", max_length=500)

    def secrets(self) -> set[str]:
        """The raw secret values this target holds, for the redactor."""
        return set()


class PostgresTarget(_TargetBase):
    """A PostgreSQL database, diagnosed with read-only queries."""

    kind: Literal["postgres"]
    dsn: SecretStr
    connect_timeout: float = Field(5.0, gt=0, le=60)

    @field_validator("dsn")
    @classmethod
    def _dsn(cls, value: SecretStr) -> SecretStr:
        try:
            conninfo_to_dict(value.get_secret_value())
        except Exception:
            # psycopg's message quotes the DSN back, password included.
            raise ValueError("not a valid PostgreSQL DSN (URL or key=value form)") from None
        return value

    def secrets(self) -> set[str]:
        raw = self.dsn.get_secret_value()
        found = {raw}
        password = conninfo_to_dict(raw).get("password")
        if password:
            found.add(str(password))
        found |= _url_password(raw)
        return found


class RedisTarget(_TargetBase):
    """A Redis server, diagnosed with an allow-list of read commands."""

    kind: Literal["redis"]
    url: SecretStr

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        scheme, sep, rest = value.get_secret_value().partition("://")
        if not sep or scheme not in ("redis", "rediss", "unix") or not rest:
            raise ValueError("must be a URL starting with redis://, rediss:// or unix://")
        return value

    def secrets(self) -> set[str]:
        raw = self.url.get_secret_value()
        return {raw} | _url_password(raw)


class _WebTarget(_TargetBase):
    base_url: str
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    verify_tls: bool = True

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            # A URL is echoed in errors and logs; credentials belong in `headers`, which are secret.
            raise ValueError("must not contain credentials: put them in headers")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query string or fragment")
        return value.rstrip("/")

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, header in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"invalid header name {name!r}")
            if any(c in header.get_secret_value() for c in "\r\n\x00"):
                raise ValueError(f"header {name} contains a line break or NUL")
        return value

    def secrets(self) -> set[str]:
        found: set[str] = set()
        for header in self.headers.values():
            raw = header.get_secret_value()
            found.add(raw)
            scheme, _, credential = raw.partition(" ")
            if credential and scheme.lower() in ("bearer", "basic", "token"):
                found.add(credential)
        return found


class HttpTarget(_WebTarget):
    """An HTTP service: health and readiness endpoints, admin APIs."""

    kind: Literal["http"]


class PrometheusTarget(_WebTarget):
    """A Prometheus-compatible query API (`/api/v1/query`)."""

    kind: Literal["prometheus"]


class CommandTarget(_TargetBase):
    """The bot's own host, where argv commands from an allow-list of programs may run."""

    kind: Literal["command"]
    allowed_programs: tuple[str, ...] = Field(min_length=1)
    cwd: Path | None = None
    env: dict[str, SecretStr] = Field(default_factory=dict)
    max_output_bytes: int = Field(65_536, ge=1024, le=16 * 1024 * 1024)

    _resolved: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("cwd")
    @classmethod
    def _cwd(cls, value: Path | None) -> Path | None:
        if value is not None and not (value.is_absolute() and value.is_dir()):
            raise ValueError(f"{value} is not an existing absolute directory")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, item in value.items():
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"invalid environment variable name {name!r}")
            if "\x00" in item.get_secret_value():
                raise ValueError(f"{name} contains a NUL byte")
        return value

    @field_validator("allowed_programs")
    @classmethod
    def _programs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for program in value:
            _resolve_program(program)
        return value

    @model_validator(mode="after")
    def _resolve_programs(self) -> CommandTarget:
        # Resolved once, at load time: a PATH change later cannot swap the binary that runs.
        self._resolved.update((program, _resolve_program(program)) for program in self.allowed_programs)
        return self

    def program_path(self, program: str) -> str | None:
        """The absolute path `program` (as written in a runbook) runs, or None if not allowed."""
        if program in self._resolved:
            return self._resolved[program]
        if os.path.isabs(program) and program in self._resolved.values():
            return program
        return None

    def secrets(self) -> set[str]:
        return {value.get_secret_value() for value in self.env.values()}


Target = Annotated[
    PostgresTarget | RedisTarget | HttpTarget | PrometheusTarget | CommandTarget,
    Field(discriminator="kind"),
]


def _target_name(name: str) -> str:
    if not re.fullmatch(TARGET_NAME_PATTERN, name):
        raise ValueError(
            "target names are lowercase letters, digits and _ (starting with a letter, at most 63 characters)"
        )
    return name


class TargetsFile(BaseModel):
    """The file named by OPSBOT_TARGETS: one top-level key, `targets`, mapping names to targets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    targets: dict[Annotated[str, AfterValidator(_target_name)], Target]

    @model_validator(mode="before")
    @classmethod
    def _only_targets(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or set(data) != {"targets"}:
            raise ValueError("expected a single top-level key 'targets'")
        return data


T = TypeVar("T", PostgresTarget, RedisTarget, HttpTarget, PrometheusTarget, CommandTarget)


class Targets:
    """The loaded registry: look targets up by name, list them, collect their secrets."""

    def __init__(self, targets: Mapping[str, Target], *, source: str = "<memory>") -> None:
        self._targets = dict(targets)
        self.source = source

    def get(self, name: str) -> Target:
        try:
            return self._targets[name]
        except KeyError:
            known = ", ".join(self.names()) or "none configured"
            raise UnknownTarget(f"unknown target {name!r} (known: {known})") from None

    def get_kind(self, name: str, kind: type[T]) -> T:
        """The target `name`, which must be of the given model class."""
        target = self.get(name)
        if not isinstance(target, kind):
            raise UnknownTarget(f"target {name!r} is a {target.kind} target, not {kind.__name__}")
        return target

    def names(self) -> list[str]:
        return sorted(self._targets)

    def secrets(self) -> set[str]:
        """Every secret value of every target, long enough to be worth redacting."""
        found: set[str] = set()
        for target in self._targets.values():
            found |= target.secrets()
        return {value for value in found if len(value) >= _MIN_SECRET_LEN}

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._targets)

    def __repr__(self) -> str:
        return f"Targets({self.names()!r}, source={self.source!r})"

    @classmethod
    def parse(
        cls, data: object, *, source: str = "<memory>", environ: Mapping[str, str] | None = None
    ) -> Targets:
        """Validate a parsed targets document (`{"targets": {name: {...}}}`), expanding `${VAR}`."""
        checked = validate_model(
            data, TargetsFile, setting=SETTING, source=source, error=TargetsError, prepare=_expander(environ)
        )
        return cls(checked.targets, source=source)


def load_targets(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Targets:
    """Read and validate a targets file; raise `TargetsError` listing every problem."""
    checked = load_yaml_model(
        Path(path), TargetsFile, setting=SETTING, error=TargetsError, prepare=_expander(environ)
    )
    return Targets(checked.targets, source=str(path))


def _expander(environ: Mapping[str, str] | None) -> Callable[[Any], Any]:
    """The step before validation: `${NAME}` in any string value becomes that environment variable;
    every variable that is not set is a problem at the place it is used."""
    env = os.environ if environ is None else environ

    def expand(document: Any) -> Any:
        unset: list[tuple[Location, str]] = []
        expanded = _expand(document, env, (), unset)
        if unset:
            raise Invalid(unset)
        return expanded

    return expand


def _expand(value: Any, env: Mapping[str, str], where: tuple[str | int, ...], unset: list[Any]) -> Any:
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                unset.append((where, f"environment variable {name} is not set"))
                return match.group(0)
            return env[name]

        return _ENV_REF.sub(lookup, value)
    if isinstance(value, Mapping):
        return {key: _expand(item, env, (*where, key), unset) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, env, (*where, i), unset) for i, item in enumerate(value)]
    return value


def _resolve_program(program: str) -> str:
    if os.path.isabs(program):
        if not (os.path.isfile(program) and os.access(program, os.X_OK)):
            raise ValueError(f"{program} is not an executable file")
        return program
    if os.sep in program:
        raise ValueError(f"{program!r} must be an absolute path or a bare name")
    found = shutil.which(program)
    if found is None:
        raise ValueError(f"{program!r} was not found on PATH")
    return os.path.abspath(found)


def _url_password(raw: str) -> set[str]:
    try:
        password = urlsplit(raw).password
    except ValueError:
        return set()
    return {password, unquote(password)} if password else set()

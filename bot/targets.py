"""The targets registry: the systems runbooks diagnose, by name, loaded from a YAML file.

Runbooks say `app_db` or `cache`; the file named by OPSBOT_TARGETS says what those names are.
Connection details usually come from the environment as `${NAME}` references, so the file itself
can be committed. Users never type a DSN or a URL in Slack: they can only pick a name that is here.

    targets:
      app_db:
        kind: postgres
        dsn: ${APP_DB_DSN}

A `command` target runs its argv on the bot's own host (`transport: local`) or on a remote one
over SSH (`transport: ssh` with an `ssh:` block: host, user, a private key, the host key pinned as
known_hosts lines, the programs that run through `sudo -n`). The key and the pinned host key are
checked when the file is loaded, so a typo stops the bot at start and not in the middle of an incident.

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

import asyncssh
from psycopg.conninfo import conninfo_to_dict
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    StringConstraints,
    ValidationInfo,
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
# A host name or an IP address; never an option (`-oProxyCommand=…`) or anything with spaces.
_SSH_HOST = re.compile(r"^[A-Za-z0-9_.:\[\]%-]{1,253}$")
_SSH_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
# A private key's base64 lines are redacted one by one too: a tool that prints a key wraps it.
_KEY_LINE_MIN = 16
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


class SshSettings(BaseModel):
    """How to reach a remote command host: its address, our key, its pinned key, our limits there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = Field(22, ge=1, le=65535)
    user: str
    private_key_file: Path | None = None
    private_key: SecretStr | None = None
    passphrase: SecretStr | None = None
    # The host's public key(s) as known_hosts lines (`ssh-keyscan -p PORT HOST`, verified out of
    # band). Only these are accepted: an unknown or changed key is refused, never learnt.
    known_hosts: str = Field(min_length=1)
    connect_timeout: float = Field(10.0, gt=0, le=120)
    max_sessions: int = Field(4, ge=1, le=64)
    sudo: tuple[str, ...] = ()

    _key: asyncssh.SSHKey | None = PrivateAttr(None)
    _key_text: str = PrivateAttr("")
    _known: asyncssh.SSHKnownHosts | None = PrivateAttr(None)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not _SSH_HOST.fullmatch(value) or value.startswith("-"):
            raise ValueError("must be a host name or an IP address")
        return value

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        if not _SSH_USER.fullmatch(value):
            raise ValueError("must be a user name (letters, digits, _ . -)")
        return value

    @model_validator(mode="after")
    def _load_keys(self) -> SshSettings:
        self._key_text = _key_text(self.private_key_file, self.private_key)
        passphrase = self.passphrase.get_secret_value() if self.passphrase else None
        try:
            self._key = asyncssh.import_private_key(self._key_text, passphrase)
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError):
            # asyncssh's message may quote the key; say only which setting is wrong.
            raise ValueError("the private key cannot be read (wrong format or passphrase)") from None
        self._known = _pinned_hosts(self.known_hosts, self.host, self.port)
        return self

    @property
    def client_key(self) -> asyncssh.SSHKey:
        """Our private key, decrypted at load time."""
        assert self._key is not None  # set by the validator
        return self._key

    @property
    def pinned_hosts(self) -> asyncssh.SSHKnownHosts:
        """The only host keys this target's server may present."""
        assert self._known is not None  # set by the validator
        return self._known

    def secrets(self) -> set[str]:
        found = {self._key_text.strip()}
        found |= {line.strip() for line in self._key_text.splitlines() if len(line.strip()) >= _KEY_LINE_MIN}
        if self.passphrase:
            found.add(self.passphrase.get_secret_value())
        return found


class CommandTarget(_TargetBase):
    """A host where argv commands from an allow-list of programs may run: this one, or one over SSH."""

    kind: Literal["command"]
    # Declared before the fields whose checks depend on it: pydantic validates in this order.
    transport: Literal["local", "ssh"] = "local"
    allowed_programs: tuple[str, ...] = Field(min_length=1)
    cwd: Path | None = None
    env: dict[str, SecretStr] = Field(default_factory=dict)
    max_output_bytes: int = Field(65_536, ge=1024, le=16 * 1024 * 1024)
    ssh: SshSettings | None = None

    _resolved: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("cwd")
    @classmethod
    def _cwd(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return value
        if not value.is_absolute():
            raise ValueError(f"{value} is not an absolute directory")
        if info.data.get("transport") != "ssh" and not value.is_dir():
            raise ValueError(f"{value} is not an existing absolute directory")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, item in value.items():
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"invalid environment variable name {name!r}")
            if any(c in item.get_secret_value() for c in "\x00\n\r"):
                # Over SSH each variable is sent as one line; the same rule for both transports.
                raise ValueError(f"{name} contains a NUL byte or a line break")
        return value

    @field_validator("allowed_programs")
    @classmethod
    def _programs(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        for program in value:
            if info.data.get("transport") == "ssh":
                _remote_program(program)
            else:
                _resolve_program(program)
        return value

    @model_validator(mode="after")
    def _resolve_programs(self) -> CommandTarget:
        if (self.transport == "ssh") != (self.ssh is not None):
            raise ValueError("an `ssh:` block is required with transport: ssh, and only then")
        if self.ssh is not None:
            if unknown := sorted(set(self.ssh.sudo) - set(self.allowed_programs)):
                raise ValueError(f"ssh.sudo names programs that are not allowed: {', '.join(unknown)}")
            # Remote programs are found by the remote PATH; nothing here can resolve them.
            self._resolved.update((program, program) for program in self.allowed_programs)
            return self
        # Resolved once, at load time: a PATH change later cannot swap the binary that runs.
        self._resolved.update((program, _resolve_program(program)) for program in self.allowed_programs)
        return self

    def program_path(self, program: str) -> str | None:
        """What runs for `program` (as written in a runbook): a local absolute path, or the remote
        name as allowed; None if not allowed."""
        if program in self._resolved:
            return self._resolved[program]
        if os.path.isabs(program) and program in self._resolved.values():
            return program
        return None

    def uses_sudo(self, program: str) -> bool:
        """Whether `program` (as `program_path` gave it) runs through `sudo -n` on the remote host."""
        return self.ssh is not None and program in self.ssh.sudo

    def secrets(self) -> set[str]:
        found = {value.get_secret_value() for value in self.env.values()}
        return found | (self.ssh.secrets() if self.ssh is not None else set())


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


def _remote_program(program: str) -> str:
    if not program or program.startswith("-") or any(c.isspace() or c == "\x00" for c in program):
        raise ValueError(f"{program!r} is not a program name")
    if os.sep in program and not os.path.isabs(program):
        raise ValueError(f"{program!r} must be an absolute path or a bare name")
    return program


def _key_text(key_file: Path | None, key: SecretStr | None) -> str:
    if (key_file is None) == (key is None):
        raise ValueError("give exactly one of private_key_file and private_key")
    if key is not None:
        return key.get_secret_value()
    assert key_file is not None
    try:
        return key_file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"private_key_file {key_file} cannot be read: {type(exc).__name__}") from None


def _pinned_hosts(lines: str, host: str, port: int) -> asyncssh.SSHKnownHosts:
    try:
        known = asyncssh.import_known_hosts(lines)
    except (ValueError, asyncssh.KeyImportError):
        raise ValueError(
            "known_hosts: not known_hosts lines (`ssh-keyscan -p PORT HOST` prints them)"
        ) from None
    if not known.match(host, "", port)[0]:
        where = host if port == 22 else f"[{host}]:{port}"
        raise ValueError(f"known_hosts has no key for {where}; pin it with `ssh-keyscan -p {port} {host}`")
    return known


def _url_password(raw: str) -> set[str]:
    try:
        password = urlsplit(raw).password
    except ValueError:
        return set()
    return {password, unquote(password)} if password else set()

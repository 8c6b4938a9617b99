"""The targets registry: YAML with ${ENV} references, one-line errors, secrets kept secret."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.logs import redact_text
from bot.targets import (
    CommandTarget,
    HttpTarget,
    PostgresTarget,
    RedisTarget,
    Targets,
    TargetsError,
    UnknownTarget,
    load_targets,
)

SAMPLE = """\
targets:
  app_db:
    kind: postgres
    dsn: ${APP_DB_DSN}
    connect_timeout: 3
    description: checkout database
  cache:
    kind: redis
    url: redis://:${CACHE_PASSWORD}@cache.internal:6379/0
  api:
    kind: http
    base_url: https://api.internal:8443/
    headers:
      Authorization: Bearer ${API_ADMIN_TOKEN}
  prometheus:
    kind: prometheus
    base_url: http://prometheus.internal:9090
  host:
    kind: command
    allowed_programs: [echo, /bin/sh]
    env:
      PGPASSWORD: ${HOST_PGPASSWORD}
    max_output_bytes: 4096
"""

DB_PASSWORD = "db-pa55word-9f"
ENV = {
    "APP_DB_DSN": f"postgresql://opsbot_ro:{DB_PASSWORD}@db.internal:5432/app",
    "CACHE_PASSWORD": "cache-pa55-77",
    "API_ADMIN_TOKEN": "tok-abc123xyz",
    "HOST_PGPASSWORD": "host-pg-pw-42",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.yml"
    path.write_text(text)
    return path


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("env")
def test_a_targets_file_loads_with_environment_references(tmp_path: Path) -> None:
    targets = load_targets(write(tmp_path, SAMPLE))
    assert targets.names() == ["api", "app_db", "cache", "host", "prometheus"]
    db = targets.get_kind("app_db", PostgresTarget)
    assert db.dsn.get_secret_value() == ENV["APP_DB_DSN"]
    assert db.connect_timeout == 3
    cache = targets.get_kind("cache", RedisTarget)
    assert cache.url.get_secret_value() == "redis://:cache-pa55-77@cache.internal:6379/0"
    api = targets.get_kind("api", HttpTarget)
    assert api.base_url == "https://api.internal:8443"
    assert api.headers["Authorization"].get_secret_value() == "Bearer tok-abc123xyz"
    host = targets.get_kind("host", CommandTarget)
    assert host.program_path("echo") == shutil.which("echo")
    assert host.program_path("/bin/sh") == "/bin/sh"
    assert host.program_path("rm") is None
    assert "api" in targets
    assert "nope" not in targets


@pytest.mark.usefixtures("env")
def test_secrets_lists_every_secret_value_and_nothing_else(tmp_path: Path) -> None:
    secrets = load_targets(write(tmp_path, SAMPLE)).secrets()
    assert {
        ENV["APP_DB_DSN"],
        DB_PASSWORD,
        "redis://:cache-pa55-77@cache.internal:6379/0",
        "cache-pa55-77",
        "Bearer tok-abc123xyz",
        "tok-abc123xyz",
        "host-pg-pw-42",
    } == secrets
    leaked = f"auth failed for {ENV['APP_DB_DSN']} with token tok-abc123xyz"
    assert "tok-abc123xyz" not in redact_text(leaked, secrets)
    assert DB_PASSWORD not in redact_text(leaked, secrets)


@pytest.mark.usefixtures("env")
def test_no_repr_or_dump_of_a_target_shows_a_secret(tmp_path: Path) -> None:
    targets = load_targets(write(tmp_path, SAMPLE))
    shown = [repr(targets)]
    for name in targets.names():
        target = targets.get(name)
        shown += [repr(target), str(target), target.model_dump_json()]
    text = "\n".join(shown)
    for secret in (DB_PASSWORD, "cache-pa55-77", "tok-abc123xyz", "host-pg-pw-42"):
        assert secret not in text


def test_an_unset_variable_is_a_load_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_DB_DSN", raising=False)
    path = write(tmp_path, "targets:\n  app_db:\n    kind: postgres\n    dsn: ${APP_DB_DSN}\n")
    with pytest.raises(TargetsError) as caught:
        load_targets(path)
    message = str(caught.value)
    assert message == (
        f"OPSBOT_TARGETS: {path}: targets.app_db.dsn: environment variable APP_DB_DSN is not set"
    )


def test_environment_can_be_passed_explicitly(tmp_path: Path) -> None:
    path = write(tmp_path, "targets:\n  cache:\n    kind: redis\n    url: redis://${HOST}:6379/${DB}\n")
    targets = load_targets(path, environ={"HOST": "10.0.0.5", "DB": "2"})
    assert targets.get_kind("cache", RedisTarget).url.get_secret_value() == "redis://10.0.0.5:6379/2"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("targets:\n  db:\n    kind: mysql\n", "targets.db.kind: unknown kind 'mysql'"),
        ("targets:\n  db:\n    dsn: x\n", "targets.db.kind: Field required"),
        ("targets:\n  db:\n    kind: postgres\n", "targets.db.dsn: Field required"),
        (
            "targets:\n  db:\n    kind: postgres\n    dsn: postgresql://h/d\n    colour: red\n",
            "targets.db.colour: Extra inputs are not permitted",
        ),
        ("targets:\n  Bad-Name:\n    kind: redis\n    url: redis://h\n", "targets.Bad-Name: target names"),
        (
            "targets:\n  c:\n    kind: redis\n    url: http://h\n",
            "targets.c.url: must be a URL starting with",
        ),
        (
            "targets:\n  api:\n    kind: http\n    base_url: https://admin:pw1234@h\n",
            "targets.api.base_url: must not contain credentials",
        ),
        (
            "targets:\n  h:\n    kind: command\n    allowed_programs: [no-such-program-xyz]\n",
            "targets.h.allowed_programs: 'no-such-program-xyz' was not found on PATH",
        ),
        (
            "targets:\n  h:\n    kind: command\n    allowed_programs: [bin/echo]\n",
            "targets.h.allowed_programs: 'bin/echo' must be an absolute path or a bare name",
        ),
        ("targets:\n  a:\n    kind: redis\n    url: redis://h\n  a:\n    kind: redis\n", "duplicate key 'a'"),
        ("targets: [1, 2\n", "line 2: invalid YAML: expected ','"),
        ("hosts: {}\n", "expected a single top-level key 'targets'"),
    ],
)
def test_invalid_files_give_one_line_naming_file_and_field(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(TargetsError) as caught:
        load_targets(path)
    message = str(caught.value)
    assert message.startswith(f"OPSBOT_TARGETS: {path}: ")
    assert "\n" not in message
    assert expected in message


def test_an_invalid_dsn_error_does_not_echo_the_password(tmp_path: Path) -> None:
    path = write(
        tmp_path, "targets:\n  db:\n    kind: postgres\n    dsn: host=db password=hunter2222 'unterminated\n"
    )
    with pytest.raises(TargetsError) as caught:
        load_targets(path)
    assert "targets.db.dsn: not a valid PostgreSQL DSN" in str(caught.value)
    assert "hunter2222" not in str(caught.value)


def test_a_missing_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(TargetsError, match=r"targets\.yml: \(file\): cannot read: No such file"):
        load_targets(tmp_path / "targets.yml")


def test_an_unknown_target_names_the_known_ones() -> None:
    targets = Targets.parse({"targets": {"cache": {"kind": "redis", "url": "redis://h"}}})
    with pytest.raises(UnknownTarget, match=r"unknown target 'app_db' \(known: cache\)"):
        targets.get("app_db")
    with pytest.raises(UnknownTarget, match="is a redis target"):
        targets.get_kind("cache", PostgresTarget)


def test_a_trailing_newline_does_not_sneak_past_a_name_pattern() -> None:
    with pytest.raises(TargetsError, match="target names"):
        Targets.parse({"targets": {"cache\n": {"kind": "redis", "url": "redis://h"}}})

"""The `opsbot` command line as a user meets it: bad settings give one line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.config import load_settings
from bot.manifest import manifest_yaml
from bot.runbooks.catalogue import load_catalogue
from handlers import build_catalogue

ROOT = Path(__file__).resolve().parents[2]
OPSBOT = str(Path(sys.executable).with_name("opsbot"))


def run_opsbot(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPSBOT_", "DATABASE_", "REDIS_"))
    }
    return subprocess.run(
        [OPSBOT, *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://root@localhost/db"),
        ("DATABASE_URL", "not a url"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("SLACK_BOT_TOKEN", "xoxp-user-token"),
        ("SLACK_APP_TOKEN", "xoxb-not-an-app-token"),
        ("OPSBOT_PORT", "eighty"),
        ("OPSBOT_INCIDENT_CHANNEL", "Incident Response!"),
    ],
)
def test_malformed_setting_stops_with_one_line_naming_it(variable: str, value: str, tmp_path: Path) -> None:
    result = run_opsbot("serve", env={variable: value, "OPSBOT_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"opsbot: {variable}:")
    assert "Traceback" not in result.stderr + result.stdout


def test_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    result = run_opsbot("migrate", env={"DATABASE_URL": "postgresql://ops:hunter2@127.0.0.1:1/opsbot"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("opsbot: DATABASE_URL: cannot connect")
    assert "hunter2" not in result.stderr


def test_version_matches_the_package() -> None:
    from bot import __version__

    result = run_opsbot("version")
    assert result.returncode == 0
    assert result.stdout.strip() == __version__


def test_manifest_lists_every_command_and_matches_the_committed_file() -> None:
    result = run_opsbot("manifest")
    assert result.returncode == 0
    manifest = yaml.safe_load(result.stdout)
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    runbooks = load_catalogue(load_settings().runbooks_dir)
    assert commands == {c.command for c in build_catalogue(runbooks)}
    fixed = {"/opsbot", "/runbook", "/approvals"}
    assert fixed | {f"/{family}" for family in runbooks.families()} == commands
    assert "commands" in manifest["oauth_config"]["scopes"]["bot"]
    assert all(c["url"].endswith("/slack/events") for c in manifest["features"]["slash_commands"])
    assert (ROOT / "manifest.yml").read_text() == result.stdout, (
        "manifest.yml is stale: run `opsbot manifest --out manifest.yml`"
    )


def test_socket_mode_manifest_has_no_urls() -> None:
    manifest = yaml.safe_load(manifest_yaml(load_catalogue(load_settings().runbooks_dir), socket_mode=True))
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in manifest["settings"]["interactivity"]
    assert all("url" not in c for c in manifest["features"]["slash_commands"])
    assert all(len(c["command"]) <= 32 for c in manifest["features"]["slash_commands"])


def test_opsbot_localslack_prints_the_bot_settings_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen([OPSBOT, "localslack", "--port", "0"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(4)]
    proc.terminate()
    assert proc.wait(10) == 0
    assert lines[0].startswith("localslack listening on http://127.0.0.1:")
    assert any(line.startswith("SLACK_API_URL=http://127.0.0.1:") for line in lines)

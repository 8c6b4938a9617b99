"""`python -m localslack` as a real process: prints the bot's environment, serves, stops on signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from localslack.cli import main


def _start(*flags: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Starts the CLI and reads its banner: the SLACK_* variables, plus "rate limits" from its comment."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "localslack", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None
    printed: dict[str, str] = {}
    deadline = time.monotonic() + 10
    while "rate limits" not in printed and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        key, sep, value = line.strip().partition("=")
        if sep and key.startswith("SLACK_"):
            printed[key] = value
        elif line.startswith("# rate limits: "):
            printed["rate limits"] = line.removeprefix("# rate limits: ").strip()
    return proc, printed


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_module_runs_prints_env_and_stops_on_signal(sig: signal.Signals) -> None:
    proc, env = _start()
    try:
        assert set(env) - {"rate limits"} == {
            "SLACK_API_URL",
            "SLACK_BOT_TOKEN",
            "SLACK_SIGNING_SECRET",
            "SLACK_APP_TOKEN",
        }
        assert env["SLACK_API_URL"].startswith("http://127.0.0.1:")
        assert env["SLACK_BOT_TOKEN"].startswith("xoxb-")
        assert env["SLACK_APP_TOKEN"].startswith("xapp-")
        resp = await AsyncWebClient(token=env["SLACK_BOT_TOKEN"], base_url=env["SLACK_API_URL"]).auth_test()
        assert resp["team_id"] == "T0OPSBOT"
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
    finally:
        _stop(proc)


@pytest.mark.parametrize(
    ("flags", "banner", "statuses"),
    [
        ((), "Slack's (429 + Retry-After)", [200, 200, 200, 429, 429]),
        (("--no-rate-limits",), "off (--no-rate-limits)", [200] * 5),
    ],
)
async def test_rate_limits_are_on_unless_switched_off(
    flags: tuple[str, ...], banner: str, statuses: list[int]
) -> None:
    proc, env = _start(*flags)
    try:
        assert env["rate limits"] == banner
        client = AsyncWebClient(token=env["SLACK_BOT_TOKEN"], base_url=env["SLACK_API_URL"])
        seen = []
        for n in range(5):
            try:
                seen.append((await client.chat_postMessage(channel="#general", text=f"{n}")).status_code)
            except SlackApiError as exc:
                seen.append(exc.response.status_code)
        assert seen == statuses
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        _stop(proc)


def test_main_refuses_non_loopback_hosts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--host", "0.0.0.0"]) == 2  # noqa: S104 - the refusal is the point
    assert "loopback" in capsys.readouterr().err

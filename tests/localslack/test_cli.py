"""`python -m localslack` as a real process: prints the bot's environment, serves, stops on signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from localslack.cli import main


def _start() -> tuple[subprocess.Popen[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "localslack", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None
    printed: dict[str, str] = {}
    deadline = time.monotonic() + 10
    while len(printed) < 4 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        key, sep, value = line.strip().partition("=")
        if sep and key.startswith("SLACK_"):
            printed[key] = value
    return proc, printed


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_module_runs_prints_env_and_stops_on_signal(sig: signal.Signals) -> None:
    proc, env = _start()
    try:
        assert set(env) == {"SLACK_API_URL", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"}
        assert env["SLACK_API_URL"].startswith("http://127.0.0.1:")
        assert env["SLACK_BOT_TOKEN"].startswith("xoxb-")
        assert env["SLACK_APP_TOKEN"].startswith("xapp-")
        resp = await AsyncWebClient(token=env["SLACK_BOT_TOKEN"], base_url=env["SLACK_API_URL"]).auth_test()
        assert resp["team_id"] == "T0OPSBOT"
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_main_refuses_non_loopback_hosts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--host", "0.0.0.0"]) == 2  # noqa: S104 - the refusal is the point
    assert "loopback" in capsys.readouterr().err

"""`opsbot manifest` warns about http request URLs, and `opsbot localslack` passes --no-rate-limits on."""

from __future__ import annotations

import subprocess

import yaml

from tests.foundation.test_cli import OPSBOT, run_opsbot


def test_manifest_with_an_http_url_warns_that_slack_needs_https() -> None:
    url = "http://127.0.0.1:3000/slack/events"
    result = run_opsbot("manifest", "--request-url", url)
    assert result.returncode == 0
    assert "Slack requires https" in result.stderr
    assert url in result.stderr
    manifest = yaml.safe_load(result.stdout)
    assert manifest["settings"]["interactivity"]["request_url"] == url

    secure = run_opsbot("manifest", "--request-url", "https://bot.example.com/slack/events")
    assert secure.returncode == 0
    assert secure.stderr == ""


def test_opsbot_localslack_passes_no_rate_limits_through() -> None:
    proc = subprocess.Popen(
        [OPSBOT, "localslack", "--port", "0", "--no-rate-limits"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    try:
        # The banner ends with the rate-limit line; stop reading there, the server keeps running.
        lines = [proc.stdout.readline()]
        while lines[-1] and not lines[-1].startswith("# rate limits:"):
            lines.append(proc.stdout.readline())
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        proc.stdout.close()
    assert lines[-1] == "# rate limits: off (--no-rate-limits)\n"

"""Secrets masked in the log belong to the bot that runs: registered when it starts, gone when it stops."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bot.config import load_settings
from bot.runtime import Runtime

TWO_BOTS = """
from bot.logs import Redactor, configure_logging, get_logger, redact_logs
configure_logging("info", "json")
log = get_logger("opsbot.test")
log.info("before", said="first-bot-secret")
stop_first = redact_logs(Redactor(["first-bot-secret"]))
stop_second = redact_logs(Redactor(["second-bot-secret"]))
log.info("both_running", said="first-bot-secret and second-bot-secret")
stop_first()
configure_logging("info", "json")  # configured again: what running bots registered still holds
log.info("second_running", said="first-bot-secret and second-bot-secret")
stop_second()
log.info("none_running", said="second-bot-secret", token="anything")
"""


def test_each_running_bot_masks_its_own_secrets_until_it_stops() -> None:
    done = subprocess.run(
        [sys.executable, "-c", TWO_BOTS], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    said = {line["event"]: line for line in map(json.loads, done.stderr.splitlines())}
    assert said["before"]["said"] == "first-bot-secret"
    assert said["both_running"]["said"] == "*** and ***"
    assert said["second_running"]["said"] == "first-bot-secret and ***"
    assert said["none_running"]["said"] == "second-bot-secret"
    assert said["none_running"]["token"] == "***"  # secret-looking keys are masked whoever runs


async def test_the_runtime_knows_its_tokens_and_its_targets_secrets(
    database_url: str, data_dir: Path, targets_file: Path, app_db_url: str
) -> None:
    settings = load_settings(
        DATABASE_URL=database_url,
        OPSBOT_DATA_DIR=str(data_dir),
        OPSBOT_TARGETS=str(targets_file),
        SLACK_BOT_TOKEN="xoxb-test-bot-token",
        SLACK_SIGNING_SECRET="test-signing-secret",
    )
    runtime = await Runtime.start(settings)
    try:
        assert {"xoxb-test-bot-token", "test-signing-secret", app_db_url} <= runtime.redactor.secrets
    finally:
        await runtime.close()

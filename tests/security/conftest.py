"""Fixtures for the security suite: one long-lived bot per module, its logs, and what it changed.

Hundreds of hostile inputs only fit the time budget against one bot per module, so the databases,
the emulator, the simulated system and the bot here are module-scoped, and each module's tests
share one event loop (`pytestmark = pytest.mark.asyncio(loop_scope="module")` in the module).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio
import structlog
from structlog.testing import LogCapture

from bot.demo import SickSystem
from bot.server import BotServer
from localslack import LocalSlack, Timing
from tests.conftest import _fresh_database, opsbot_seed, running_bot

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "runbooks"

# Content limits stay Slack's; only the clocks are relaxed, so that a 2-core machine shared with
# other test runs cannot turn a slow ack or a late views.open into a false failure.
RELAXED = Timing(ack_timeout=15.0, trigger_ttl=60.0, retry_delays=(0.05, 0.2, 0.2))

# Periodic jobs (the scheduled health check, the approval expiry sweep) post and log on their own
# clock; the suite judges what requests do, so they are moved to a tick that never comes in a run.
QUIET_SCHEDULES = {"OPSBOT_SCHEDULE_TICK_CRON": "0 0 1 1 *", "OPSBOT_APPROVAL_SWEEP_CRON": "0 0 1 1 *"}

# Tables whose rows are side effects of a request; a refused request must not add to any of them.
EFFECT_TABLES = (
    "audit_events",
    "diagnosis_runs",
    "approval_requests",
    "incidents",
    "timeline_events",
    "postmortems",
)


class ErrorRecords(logging.Handler):
    """Every stdlib log record at ERROR or above (Bolt, aiohttp, asyncio's lost task exceptions)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class BotLogs:
    """What the in-process bot logged: structlog events and stdlib error records."""

    def __init__(self, events: list[dict[str, Any]], errors: ErrorRecords) -> None:
        self.events = events
        self.errors = errors

    def __repr__(self) -> str:  # hypothesis prints the fixtures of a failing example
        return f"BotLogs({len(self.events)} events, {len(self.errors.records)} error records)"

    def mark(self) -> tuple[int, int]:
        return len(self.events), len(self.errors.records)

    def failures(self, since: tuple[int, int] = (0, 0)) -> list[str]:
        """Error-level entries since `mark()`: an unhandled exception in a listener or a task."""
        found = [
            f"{e.get('event')} {e.get('task', '')}: {e.get('exc_info') or e.get('error') or ''!r}"
            for e in self.events[since[0] :]
            if e.get("log_level") in ("error", "critical", "exception")
        ]
        found += [f"{r.name}: {r.getMessage()}" for r in self.errors.records[since[1] :]]
        return found


@pytest.fixture(scope="module")
def bot_logs() -> Iterator[BotLogs]:
    """Capture the bot's logs for a whole module, restoring structlog's configuration afterwards."""
    saved = structlog.get_config()
    capture = LogCapture()
    structlog.configure(processors=[capture], cache_logger_on_first_use=False)
    errors = ErrorRecords()
    root = logging.getLogger()
    root.addHandler(errors)
    try:
        yield BotLogs(capture.entries, errors)
    finally:
        root.removeHandler(errors)
        structlog.configure(**saved)


@pytest.fixture(scope="module")
def module_database_url(pg_admin_url: str) -> Iterator[str]:
    yield from _fresh_database(pg_admin_url)


@pytest.fixture(scope="module")
def module_app_db_url(pg_admin_url: str) -> Iterator[str]:
    yield from _fresh_database(pg_admin_url)


# The Slack beside the module's bots is unlimited (see module_slack): they need not pace themselves.
UNPACED = {"OPSBOT_SLACK_BUDGET_SCALE": "100"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_slack() -> AsyncIterator[LocalSlack]:
    # Unlimited on purpose: the fuzzers send hundreds of commands and clicks through one workspace
    # in a minute, far beyond Slack's per-minute budgets; what they test is that nothing typed
    # breaks or leaks, and pacing under the real limits is tested in tests/outbound.
    async with LocalSlack.running(opsbot_seed(), timing=RELAXED, rate_limits=False) as emulator:
        yield emulator


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sick_system(
    module_app_db_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SickSystem]:
    """Every target the real catalogue names (app_db, cache, api, prometheus, host), simulated."""
    async with SickSystem.running(
        postgres_dsn=module_app_db_url, redis_url=redis_url, workdir=tmp_path_factory.mktemp("sick")
    ) as system:
        yield system


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def catalogue_bot(
    module_slack: LocalSlack,
    module_database_url: str,
    sick_system: SickSystem,
    bot_logs: BotLogs,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[BotServer]:
    """The bot with the shipped runbook catalogue, its targets pointed at the simulated system. These
    suites are about what people type, not who may read: every class may be read anywhere here
    (tests/access holds the reading policy)."""
    policy = tmp_path_factory.mktemp("policy") / "policy.yml"
    everywhere = "{readers: [], channels: [public, private, incident, im], redact: true}"
    policy.write_text(
        f"reading:\n  defaults:\n    personal: {everywhere}\n    secret_adjacent: {everywhere}\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        # The host target resolves its allowed programs on PATH: the demo stand-ins, never the real ones.
        patch.setenv("PATH", sick_system.path_env)
        async with running_bot(
            module_slack,
            module_database_url,
            tmp_path_factory.mktemp("bot-data"),
            OPSBOT_TARGETS=str(sick_system.targets_file),
            OPSBOT_RUNBOOKS=str(RUNBOOKS),
            OPSBOT_POLICY=str(policy),
            **UNPACED,
            **QUIET_SCHEDULES,
        ) as server:
            yield server


@dataclass(frozen=True)
class Effects:
    """A count of everything a request could have changed, to compare before and after."""

    api_calls: int
    rows: dict[str, int]
    messages: int  # the bot's
    ephemerals: int
    views: int
    files: int
    response_url_posts: int


async def effects(slack: LocalSlack, database_url: str) -> Effects:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        rows = {}
        for table in EFFECT_TABLES:
            row = await (await conn.execute(f"SELECT count(*) FROM {table}")).fetchone()  # noqa: S608
            rows[table] = int(row[0]) if row else 0
    state = slack.state
    return Effects(
        # Bolt asks auth.test who it is on the first authentic request; that changes nothing.
        api_calls=len([c for c in slack.recorder.api_calls if c.method != "auth.test"]),
        rows=rows,
        messages=sum(
            1 for ch in state.channels.values() for m in ch.messages.values() if m.user == slack.bot_user_id
        ),
        ephemerals=len(state.ephemerals),
        views=len(state.views),
        files=len(state.files),
        response_url_posts=sum(entry.uses for entry in response_urls(slack)),
    )


def response_urls(slack: LocalSlack) -> list[Any]:
    """Every response_url the emulator issued, with how often it was used and what it produced.

    The emulator answers an invalid response_url post with a 400 that Bolt's `respond` does not
    raise on, so the only trace of a reply Slack would have refused is a use without a result.
    """
    return list(slack._core.response_urls.issued.values())


# Errors the bot provokes on purpose and handles: it tries channel names until one is free, invites
# people who may already be in the channel, and joins a public channel when a post says it is not in it.
HANDLED_ERRORS = {
    ("conversations.create", "name_taken"),
    ("conversations.invite", "already_in_channel"),
    ("conversations.invite", "cant_invite_self"),
    ("chat.postMessage", "not_in_channel"),
}


def refused_replies(slack: LocalSlack) -> list[str]:
    """Replies Slack would have refused: failed Web API calls and response_url posts that failed."""
    failed = [
        f"{c.method}: {c.error} {str(c.args)[:300]}"
        for c in slack.recorder.calls(ok=False)
        if (c.method, c.error) not in HANDLED_ERRORS
    ]
    failed += [
        f"response_url post to {entry.target}: refused"
        for entry in response_urls(slack)
        if entry.uses > len(entry.results)
    ]
    return failed


def broadcasts(slack: LocalSlack, planted: Collection[str] = ()) -> list[str]:
    """Bot messages that would notify a whole channel; the bot never does, whatever users type.

    `planted`: timestamps of messages a test put in the bot's name itself.
    """
    found = []
    for channel in slack.state.channels.values():
        for message in channel.messages.values():
            # System messages (a topic change) are plain text: they notify nobody.
            if message.user != slack.bot_user_id or message.ts in planted or message.subtype:
                continue
            content = "\n".join([message.text, *_mrkdwn(message.blocks), *_mrkdwn(message.attachments)])
            if any(word in content for word in ("<!channel", "<!here", "<!everyone")):
                found.append(f"#{channel.name} {message.ts}: {content[:300]}")
    return found


def _mrkdwn(node: Any) -> list[str]:
    """The mrkdwn texts in blocks: where Slack turns `<!here>` into a notification (plain_text never)."""
    if isinstance(node, list):
        return [text for item in node for text in _mrkdwn(item)]
    if not isinstance(node, dict):
        return []
    own = [node["text"]] if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str) else []
    return own + [text for value in node.values() for text in _mrkdwn(value)]


def secret_free_environment() -> dict[str, str]:
    """The test process's environment minus proxies and anything that would leak into a child bot."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "DATABASE_", "REDIS_", "OPSBOT_")) and "PROXY" not in k.upper()
    }


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many inputs the fuzzing and injection tests sent, for the run's report."""
    from tests.security.inputs import FUZZED

    if FUZZED:
        terminalreporter.write_sep("-", "security inputs sent")
        for name, count in sorted(FUZZED.items()):
            terminalreporter.write_line(f"{count:7d}  {name}")
        terminalreporter.write_line(f"{sum(FUZZED.values()):7d}  in all")

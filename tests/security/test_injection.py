"""SQL, shell and PromQL injection through every parameter of every shipped runbook.

Two layers are tested, each on the real catalogue:
1. Parameter validation: each classic payload for each parameter is refused with usage text, or
   accepted only in the parameter's safe shape (a bounded int, an allow-listed name, a string that
   matches the runbook's pattern). Through Slack, a refused command runs nothing.
2. The probes and steps themselves, fed the raw payloads as if validation had let them through: SQL
   gets them as bind values (a canary table survives), commands as one argv element with no shell
   (a canary file is never created, options are refused), PromQL refuses anything that is not a
   label value before sending a request.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from aiohttp import web

from bot.actions import ActionExecutor
from bot.demo import SickSystem
from bot.probes import ProbeRunner
from bot.probes.base import ProbeFailed
from bot.probes.command import CommandProbe
from bot.probes.postgres import PostgresProbe
from bot.probes.prometheus import LABEL_VALUE, PrometheusProbe
from bot.runbooks.model import Runbook
from bot.runbooks.params import Param, ParamError, bind_params, parse_duration
from bot.server import BotServer
from bot.targets import Targets
from localslack import LocalSlack
from tests.security.conftest import BotLogs, broadcasts, effects
from tests.security.inputs import COMMAND_CATALOGUE, FUZZED, plausible_values

module_loop = pytest.mark.asyncio(loop_scope="module")

CANARY_FILE = "{canary}"
# Slash commands sent at once: people type concurrently, and it keeps the suite quick.
BATCH = 8
# The classic payloads (the canary path is filled in per run), then encodings and sizes.
PAYLOADS: tuple[str, ...] = (
    "'; DROP TABLE canary; --",
    "1 OR 1=1",
    "1' OR '1'='1",
    "x); DELETE FROM canary; --",
    f"$(touch {CANARY_FILE})",
    f"`touch {CANARY_FILE}`",
    f"; touch {CANARY_FILE}",
    f"| touch {CANARY_FILE}",
    f"&& touch {CANARY_FILE}",
    "`id`",
    "; rm -rf /",
    "--help",
    "-rf",
    f"--output={CANARY_FILE}",
    '"} or vector(1) #',
    'foo"}[5m]) or up{x="',
    'api",job=~".+',
    "api|backend",
    ".*",
    "api\nDROP TABLE canary",
    "api\r\nX: y",
    "api\x00",
    "%(x)s",
    "%s%s%s",
    "{x}",
    "{service}",
    "${PATH}",
    "../../etc/passwd",
    "ａｐｉ",
    "٣٠",
    "İ",
    "\u202eipa",
    "🔥",
    "a" * 10_000,
    "9" * 40,
    "-1",
    "1e3",
    "0x1F",
    "30m",
    "api ",
    " api",
)


# What PostgreSQL says about a bound value that is not of its parameter's type (never a syntax error).
DATA_ERRORS = ("invalid input syntax for type", "out of range", "NUL")


@dataclass(frozen=True)
class Slot:
    """One parameter of one runbook, for its checks (action None) or for one of its actions."""

    runbook: Runbook
    action: str | None
    param: Param

    @property
    def params(self) -> list[Param]:
        if self.action is None:
            return list(self.runbook.params)
        action = self.runbook.action(self.action)
        assert action is not None
        return [*self.runbook.params, *action.params]

    @property
    def id(self) -> str:
        return f"{self.runbook.id}{':' + self.action if self.action else ''}.{self.param.name}"


def slots() -> Iterator[Slot]:
    for runbook in COMMAND_CATALOGUE:
        for param in runbook.params:
            yield Slot(runbook, None, param)
        for action in runbook.actions:
            for param in action.params:
                yield Slot(runbook, action.id, param)


SLOTS = list(slots())


def payloads(canary: Path) -> list[str]:
    return [p.replace(CANARY_FILE, str(canary)) for p in PAYLOADS]


def safe_shape(param: Param, value: Any) -> bool:
    """What a parameter may hand to a probe: its own type, within its own bounds or allow-list."""
    kind = param.type
    if kind == "int":
        return type(value) is int and param.min <= value <= param.max  # type: ignore[union-attr]
    if kind == "duration":
        low, high = parse_duration(param.min), parse_duration(param.max)  # type: ignore[union-attr]
        return type(value) is int and low <= value <= high
    if kind == "enum":
        return value in param.values  # type: ignore[union-attr]
    if kind == "identifier":
        return value in param.allowed  # type: ignore[union-attr]
    return (
        isinstance(value, str)
        and len(value) <= param.max_length  # type: ignore[union-attr]
        and re.fullmatch(param.pattern, value) is not None  # type: ignore[union-attr]
    )


def _words(slot: Slot, value: str) -> list[str]:
    """`name=value` for the slot, and plausible values for the other required parameters."""
    others = [
        f"{p.name}={plausible_values(p)[0]}" for p in slot.params if p.required and p.name != slot.param.name
    ]
    return [*others, f"{slot.param.name}={value}"]


def test_every_parameter_type_of_the_catalogue_is_covered() -> None:
    kinds = {slot.param.type for slot in SLOTS}
    assert {"int", "enum", "identifier", "string"} <= kinds
    assert len(SLOTS) >= 20


@pytest.mark.parametrize("slot", SLOTS, ids=lambda s: s.id)
def test_each_payload_is_refused_or_bound_in_the_parameters_safe_shape(slot: Slot, tmp_path: Path) -> None:
    for payload in payloads(tmp_path / "pwned"):
        FUZZED["injection attempts (parameter validation)"] += 1
        try:
            values = bind_params(slot.params, _words(slot, payload))
        except ParamError:
            continue
        value = values[slot.param.name]
        assert safe_shape(slot.param, value), (payload, value)


def _specs_using(runbook: Runbook, name: str) -> list[Any]:
    specs: list[Any] = [c.probe for c in runbook.checks]
    for action in runbook.actions:
        specs += [s for s in (action.preview, action.step) if s is not None]
    return [s for s in specs if name in getattr(s, "param_names", lambda: frozenset())()]


POSTGRES_SPECS = [
    (slot, spec)
    for slot in SLOTS
    for spec in _specs_using(slot.runbook, slot.param.name)
    if spec.kind == "postgres"
]
COMMAND_SPECS = [
    (slot, spec)
    for slot in SLOTS
    for spec in _specs_using(slot.runbook, slot.param.name)
    if spec.kind == "command"
]
PROMETHEUS_SPECS = [
    (slot, spec)
    for slot in SLOTS
    for spec in _specs_using(slot.runbook, slot.param.name)
    if spec.kind == "prometheus"
]


def test_the_catalogue_hands_parameters_to_sql_commands_and_promql() -> None:
    assert POSTGRES_SPECS and COMMAND_SPECS and PROMETHEUS_SPECS


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def canary_table(sick_system: SickSystem) -> AsyncIterator[str]:
    async with await psycopg.AsyncConnection.connect(sick_system.postgres_dsn, autocommit=True) as conn:
        await conn.execute("CREATE TABLE canary (id int PRIMARY KEY, note text)")
        await conn.execute("INSERT INTO canary VALUES (1, 'still here')")
    yield sick_system.postgres_dsn


async def canary_rows(dsn: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        return await (await conn.execute("SELECT id, note FROM canary")).fetchall()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def targets(sick_system: SickSystem) -> Targets:
    return sick_system.load_targets()


@module_loop
async def test_sql_gets_each_payload_only_as_a_bind_value(
    targets: Targets, canary_table: str, tmp_path: Path
) -> None:
    flags_before = await _flags(canary_table)
    async with ProbeRunner(targets) as runner, ActionExecutor(targets) as executor:
        for slot, spec in POSTGRES_SPECS:
            slot_id, name = slot.id, slot.param.name
            for payload in payloads(tmp_path / "pwned"):
                FUZZED["injection attempts (SQL bind values)"] += 1
                params = {p: "no_such_name" for p in spec.param_names()} | {name: payload}
                if isinstance(spec, PostgresProbe):
                    result = await runner.run(spec, params, run_id="inject", timeout_s=5)
                    status, error = result.status, result.error
                    matched = result.values.get("row_count")
                else:  # an action's write statement, on the same connection rules but read-write
                    outcome = await executor.run(spec, params, run_id="inject", timeout_s=5)
                    status = "ok" if outcome.status == "succeeded" else "error"
                    error, matched = outcome.error, outcome.values.get("rows")
                if status == "error":
                    # The server read the value as data and found it is not data of the column's type.
                    assert any(m in (error or "") for m in DATA_ERRORS), (slot_id, payload, error)
                    continue
                if slot.param.type == "string":  # compared with names: no name is a payload
                    assert matched in (0, None), (slot_id, payload, matched)
    assert await canary_rows(canary_table) == [(1, "still here")]
    assert await _flags(canary_table) == flags_before


async def _flags(dsn: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        return await (await conn.execute("SELECT * FROM feature_flags ORDER BY name")).fetchall()


@module_loop
async def test_commands_get_each_payload_as_one_argument_without_a_shell(
    targets: Targets, sick_system: SickSystem, tmp_path: Path
) -> None:
    canary = tmp_path / "pwned"
    calls_before = len(sick_system.host.calls())
    ran = 0
    async with ProbeRunner(targets) as runner, ActionExecutor(targets) as executor:
        for slot, spec in COMMAND_SPECS:
            slot_id, name = slot.id, slot.param.name
            for payload in payloads(canary):
                FUZZED["injection attempts (argv elements)"] += 1
                params = {p: "api" for p in spec.param_names()} | {name: payload}
                if isinstance(spec, CommandProbe):
                    result = await runner.run(spec, params, run_id="inject", timeout_s=5)
                    refused = result.status == "error" and result.values.get("exit_code") is None
                    error = result.error or ""
                else:
                    outcome = await executor.run(spec, params, run_id="inject", timeout_s=5)
                    refused = outcome.status == "failed" and "exit_code" not in outcome.values
                    error = outcome.error or ""
                if payload.startswith("-") or "\x00" in payload:
                    assert refused and ("option" in error or "NUL" in error), (slot_id, payload, error)
                else:
                    # A sequence (`then:`) runs each of its programs once, each with the payload.
                    ran += 1 if isinstance(spec, CommandProbe) else len(spec.argvs)
    assert not canary.exists(), "a payload was run by a shell"
    # One log line per call (a payload with a line break continues on the next line).
    programs = set(sick_system.host.stand_ins)
    called = [line for line in sick_system.host.calls()[calls_before:] if line.split(" ", 1)[0] in programs]
    assert len(called) == ran, "every accepted payload reached its program once, as one argument"


@module_loop
async def test_promql_refuses_anything_but_a_label_value_before_any_request(tmp_path: Path) -> None:
    received: list[str] = []

    async def query(request: web.Request) -> web.Response:
        received.append(request.query.get("query", ""))
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": []}})

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        prometheus = Targets.parse({"targets": {"prometheus": {"kind": "prometheus", "base_url": url}}})
        sent = []
        async with ProbeRunner(prometheus) as probes:
            for slot, spec in PROMETHEUS_SPECS:
                slot_id, name = slot.id, slot.param.name
                assert isinstance(spec, PrometheusProbe)
                for payload in [*payloads(tmp_path / "pwned"), "api", "api.v1", "api-2:9100"]:
                    FUZZED["injection attempts (PromQL label values)"] += 1
                    result = await probes.run(spec, {name: payload}, run_id="inject", timeout_s=5)
                    if LABEL_VALUE.fullmatch(payload):
                        assert result.status == "ok", (slot_id, payload, result.error)
                        sent.append(spec.render({name: payload}))
                    else:
                        assert result.status == "error", (slot_id, payload)
                        assert (
                            result.error == f"parameter {name!r} is not a valid label value; query not sent"
                        )
                        with pytest.raises(ProbeFailed):
                            spec.render({name: payload})
    finally:
        await runner.cleanup()
    assert received == sent
    for query_text in received:
        assert "or vector" not in query_text and "\n" not in query_text


def _command_for(slot: Slot, value: str) -> tuple[str, str]:
    words = " ".join(_words(slot, value))
    if slot.action is not None:
        return "/runbook", f"run {slot.runbook.id}:{slot.action} {words}"
    if slot.runbook.command is not None:
        return slot.runbook.command.text.split(" ", 1)[0], f"{slot.runbook.command.subcommand or ''} {words}"
    return "/runbook", f"run {slot.runbook.id} {words}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def slack(module_slack: LocalSlack, catalogue_bot: BotServer) -> LocalSlack:
    return module_slack


@module_loop
async def test_through_slack_a_refused_payload_runs_nothing_and_an_accepted_one_is_data(
    slack: LocalSlack,
    catalogue_bot: BotServer,
    module_database_url: str,
    canary_table: str,
    sick_system: SickSystem,
    bot_logs: BotLogs,
    tmp_path: Path,
) -> None:
    canary = tmp_path / "pwned"
    logged = bot_logs.mark()
    calls_before = len(sick_system.host.calls())
    refused: list[tuple[Slot, str]] = []
    accepted: list[tuple[Slot, str]] = []
    for slot in SLOTS:
        for payload in payloads(canary):
            if any(c.isspace() for c in payload):
                continue  # Slack splits on whitespace: the pieces are other words (the fuzz suite sends them)
            try:  # the bot drops NUL characters from what Slack delivers before parsing it
                bind_params(slot.params, _words(slot, payload.replace("\x00", "")))
            except ParamError:
                refused.append((slot, payload))
            else:
                accepted.append((slot, payload))

    async def refused_with_usage(slot: Slot, payload: str) -> None:
        command, text = _command_for(slot, payload)
        delivery = await slack.slash("alice", "general", f"{command} {text}")
        assert delivery.ok and delivery.user_error is None, (slot.id, payload)
        reply = delivery.ack or {}
        said = str(reply.get("text"))
        assert reply.get("response_type") == "ephemeral", (slot.id, payload, reply)
        assert "Usage" in said or "runs these runbooks" in said, (slot.id, payload, reply)
        assert slot.param.name in said or "too long" in said, (slot.id, payload, reply)

    before = await effects(slack, module_database_url)
    for start in range(0, len(refused), BATCH):
        batch = refused[start : start + BATCH]
        FUZZED["injection attempts (slash commands)"] += len(batch)
        await asyncio.gather(*(refused_with_usage(slot, payload) for slot, payload in batch))
    await _settle(catalogue_bot)
    after = await effects(slack, module_database_url)
    assert after.rows == before.rows, "a refused command ran something"
    assert (after.views, after.messages) == (before.views, before.messages)

    for slot, payload in accepted:
        FUZZED["injection attempts (slash commands)"] += 1
        command, text = _command_for(slot, payload)
        delivery = await slack.slash("alice", "general", f"{command} {text}")
        assert delivery.ok and delivery.user_error is None, (slot.id, payload)
    await _settle(catalogue_bot)
    assert await canary_rows(canary_table) == [(1, "still here")]
    assert not canary.exists()
    for line in sick_system.host.calls()[calls_before:]:
        assert "pwned" not in line and "DROP" not in line, line
    async with await psycopg.AsyncConnection.connect(module_database_url) as conn:
        ran = await (
            await conn.execute("SELECT params->>'user_id' FROM diagnosis_runs WHERE params ? 'user_id'")
        ).fetchall()
    typed_ids = {payload.replace("\x00", "") for slot, payload in accepted if slot.id == "db.user.user_id"}
    assert typed_ids, "some payloads are valid user ids (e.g. -rf): they run, as bind values"
    assert {row[0] for row in ran} >= typed_ids
    assert bot_logs.failures(logged) == []


async def _settle(bot: BotServer) -> None:
    assert bot.runtime is not None
    for _ in range(600):
        if len(bot.runtime.tasks) == 0:
            return
        await asyncio.sleep(0.05)


@module_loop
async def test_slack_markup_in_what_people_type_never_pings_a_channel(
    slack: LocalSlack, catalogue_bot: BotServer, bot_logs: BotLogs
) -> None:
    """Titles, updates and notes are echoed into cards, topics and announcements: escaped."""
    logged = bot_logs.mark()
    await slack.slash("alice", "incident-response", "/incident declare p3 <!here> <!channel|channel> oops")
    channel = await slack.wait_for(
        lambda: next((c for c in slack.state.channels.values() if c.name.endswith("oops")), None), timeout=15
    )
    await slack.wait_for(lambda: slack.user("alice").id in channel.members, timeout=15)
    for line in ("/incident update <!everyone> all hands", "/incident note <!here|here> see above"):
        assert (await slack.slash("alice", channel.id, line)).ok
    await _settle(catalogue_bot)
    assert len(slack.messages(channel.id)) >= 2
    assert broadcasts(slack) == []
    assert bot_logs.failures(logged) == []

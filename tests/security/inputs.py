"""What people (and attackers) type: hostile payloads, and hypothesis strategies built from the catalogue.

Every strategy is derived from the shipped runbook catalogue and the command catalogue the bot
registers, so a new command, subcommand or parameter is fuzzed without touching this file.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from hypothesis import strategies as st

from bot.commands import SlashCommand
from bot.runbooks.catalogue import Catalogue, load_catalogue
from bot.runbooks.model import Runbook
from bot.runbooks.params import Param
from handlers import build_catalogue
from tests.security.conftest import RUNBOOKS

# Classic injection payloads for SQL, shells, argv options, PromQL, Python formatting and Slack
# markup, plus encodings and sizes that trip naive parsers.
HOSTILE: tuple[str, ...] = (
    "'; DROP TABLE canary; --",
    "1 OR 1=1",
    "1; DROP TABLE canary",
    "' OR '1'='1",
    "$(touch /tmp/opsbot-pwned)",
    "`id`",
    "; rm -rf /",
    "| cat /etc/passwd",
    "&& reboot",
    "--help",
    "-rf",
    "--output=/tmp/opsbot-pwned",
    '"} or vector(1) #',
    'foo"}[5m]) or up{x="',
    'api",job=~".+',
    ".*",
    "line\nbreak",
    "carriage\rreturn",
    "nul\x00byte",
    "%(x)s",
    "{x}",
    "{0.__class__}",
    "${HOME}",
    "../../etc/passwd",
    "<!channel>",
    "<!here|here>",
    "<@U0BOB>",
    "*bold* _it_ ~s~ `code`",
    "```block```",
    "&lt;&gt;&amp;",
    "ｆｕｌｌｗｉｄｔｈ",
    "٣٤",
    "١٢٣",
    "३०",
    "Ⅻ",
    "²",
    "İ",
    "🔥💥",
    "\u202eevil",
    "\u200b",
    "é" * 300,
    "A" * 10_000,
    "9" * 40,
    "-1",
    "1e9",
    "0x10",
    "1_000",
    " 30 ",
    "30m; DROP",
)

COMMAND_CATALOGUE: Catalogue = load_catalogue(RUNBOOKS)
COMMANDS: list[SlashCommand] = list(build_catalogue(COMMAND_CATALOGUE))
# /incident and /runbook do the most with their text (declare, roles, approvals), so they are drawn
# as often as all the diagnosis families together.
_WEIGHTED = COMMANDS + [c for c in COMMANDS if c.command in ("/incident", "/runbook")] * 5

# How many inputs each fuzzing test sent, printed at the end of the run.
FUZZED: Counter[str] = Counter()


def params_of(runbook: Runbook) -> list[Param]:
    """A runbook's parameters and those of its actions, each once."""
    seen: dict[str, Param] = {}
    for param in [*runbook.params, *(p for a in runbook.actions for p in a.params)]:
        seen.setdefault(param.name, param)
    return list(seen.values())


def plausible_values(param: Param) -> list[str]:
    """Values that pass this parameter's validation, so some fuzzed commands really run."""
    kind = param.type
    if kind == "enum":
        return list(param.values)  # type: ignore[union-attr]
    if kind == "identifier":
        return list(param.allowed)  # type: ignore[union-attr]
    if kind == "int":
        return [str(param.min), str(param.max)]  # type: ignore[union-attr]
    if kind == "duration":
        return [param.min, param.max]  # type: ignore[union-attr]
    candidates = ["rate_limit", "demo-user-1", "v1.2.3"]
    return [c for c in candidates if re.fullmatch(param.pattern, c)] or candidates  # type: ignore[union-attr]


def _heads(command: SlashCommand) -> list[tuple[str, list[Param]]]:
    """What can follow the command name, with the parameters that then make sense."""
    family = command.command.lstrip("/")
    if family == "runbook":
        heads: list[tuple[str, list[Param]]] = [("list", []), ("show", []), ("run", [])]
        for runbook in COMMAND_CATALOGUE:
            heads.append((f"show {runbook.id}", []))
            heads.append((f"run {runbook.id}", list(runbook.params)))
            for action in runbook.actions:
                heads.append((f"run {runbook.id}:{action.id}", [*runbook.params, *action.params]))
        return heads
    if family == "incident":
        verbs = [s.name for s in command.subcommands]
        return (
            [(v, []) for v in verbs]
            + [(f"declare p{n}", []) for n in range(4)]
            + [
                ("role commander", []),
                ("severity", []),
                ("root-cause", []),
                ("postmortem", []),
            ]
        )
    members = COMMAND_CATALOGUE.families().get(family, [])
    if not members:
        return [(s.name, []) for s in command.subcommands]
    heads = []
    for runbook in members:
        sub = runbook.command.subcommand if runbook.command else None
        heads.append((sub or "", params_of(runbook)))
    return heads


def _word(params: list[Param]) -> st.SearchStrategy[str]:
    names = [p.name for p in params] or ["x"]
    value = st.one_of(
        st.sampled_from(HOSTILE),
        st.text(max_size=40),
        st.integers().map(str),
        st.sampled_from([v for p in params for v in plausible_values(p)] or ["1"]),
    )
    named = st.tuples(st.sampled_from(names), value).map(lambda kv: f"{kv[0]}={kv[1]}")
    return st.one_of(named, value)


@st.composite
def command_lines(draw: st.DrawFn) -> tuple[str, str]:
    """(command, text): a real command, one of its subcommands or junk, then hostile or plausible words."""
    command = draw(st.sampled_from(_WEIGHTED))
    if draw(st.integers(0, 9)) == 0:
        return command.command, draw(st.text(max_size=300))
    head, params = draw(st.sampled_from(_heads(command)))
    words = draw(st.lists(_word(params), max_size=4))
    return command.command, " ".join([head, *words]).strip()


def _any_json() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30))
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)
        ),
        max_leaves=8,
    )


def button_values() -> st.SearchStrategy[str]:
    """What a tampered or stale button might carry: junk, ids, and JSON shaped like ours but wrong."""
    import json

    runbook_ids = [r.id for r in COMMAND_CATALOGUE]
    action_refs = [(r.id, a.id) for r in COMMAND_CATALOGUE for a in r.actions]
    shaped = st.one_of(
        st.builds(
            lambda rb, params: json.dumps({"runbook": rb, "params": params}),
            st.one_of(st.sampled_from(runbook_ids), st.text(max_size=20)),
            st.dictionaries(st.sampled_from(["idle_minutes", "service", "flag", "x"]), st.text(max_size=20)),
        ),
        st.builds(
            lambda ref, params: json.dumps({"runbook": ref[0], "action": ref[1], "params": params}),
            st.one_of(st.sampled_from(action_refs), st.tuples(st.text(max_size=10), st.text(max_size=10))),
            st.dictionaries(st.sampled_from(["idle_minutes", "service", "flag", "x"]), _any_json()),
        ),
        _any_json().map(json.dumps),
    )
    ids = st.one_of(
        st.from_regex(r"REQ-[0-9]{1,6}", fullmatch=True),
        st.from_regex(r"INC-20[0-9]{2}-[0-9]{4}", fullmatch=True),
    )
    return st.one_of(shaped, ids, st.sampled_from(HOSTILE), st.text(max_size=200)).map(lambda v: v[:2000])

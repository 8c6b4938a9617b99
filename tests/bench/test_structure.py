"""The layer rules README's Layout states, held by a test: no import cycle between the packages of
`bot/`, handlers that touch no store, and no function in `bot/` or `handlers/` over 50 lines."""

from __future__ import annotations

from pathlib import Path

from bench.structure import LONG, cyclic_groups, functions, package_edges, store_accesses

ROOT = Path(__file__).resolve().parents[2]


def test_no_package_of_bot_imports_itself_round_a_cycle() -> None:
    assert cyclic_groups(package_edges(ROOT)) == []


def test_a_cycle_is_found_when_there_is_one() -> None:
    edges = {"bot.a": {"bot.b"}, "bot.b": {"bot.c"}, "bot.c": {"bot.a"}, "bot.d": {"bot.a"}}
    assert cyclic_groups(edges) == [["bot.a", "bot.b", "bot.c"]]


def test_handlers_reach_no_store() -> None:
    assert store_accesses(ROOT) == 0


def test_no_function_of_the_application_is_over_50_lines() -> None:
    long = [(n, where) for n, where in functions(ROOT) if n > LONG and not where.startswith("localslack/")]
    assert long == []

"""Parameter parsing: bounded, allow-listed, and hostile text never gets through as anything else."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from bot.runbooks.catalogue import Catalogue, load_catalogue
from bot.runbooks.commands import RunRequest, Usage, parse_family, parse_run
from bot.runbooks.params import Param, ParamError, bind_params, parse_duration

PARAMS: list[Param] = [
    TypeAdapter(Param).validate_python(p)
    for p in (
        {"name": "service", "type": "identifier", "allowed": ["api", "worker"], "required": True},
        {"name": "minutes", "type": "int", "min": 1, "max": 60, "default": 5},
        {"name": "window", "type": "duration", "min": "1m", "max": "1d", "default": "15m"},
        {"name": "level", "type": "enum", "values": ["error", "warning"], "default": "error"},
        {"name": "email", "type": "string", "pattern": r"[a-z0-9.]+@[a-z0-9.]+", "max_length": 80},
    )
]

HOSTILE = [
    "'; DROP TABLE users; --",
    "$(reboot)",
    "`reboot`",
    "a" * 5000,
    "api;rm -rf /",
    "api\x00",
    "api\nworker",
    "ａｐｉ",  # full-width look-alike
    "🔥",
    "../../etc/passwd",
    '" OR 1=1 --',
]


def test_values_are_typed_defaulted_and_positional() -> None:
    values = bind_params(PARAMS, ["worker", "minutes=30", "window=2h"], positional=["service"])
    assert values == {"service": "worker", "minutes": 30, "window": 7200, "level": "error"}


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ([], "`service` is required"),
        (["service=db"], "must be one of api, worker"),
        (["service=api", "minutes=0"], "from 1 to 60"),
        (["service=api", "minutes=1e3"], "whole number"),
        (["service=api", "window=3d"], "from 1m to 1d"),
        (["service=api", "window=soon"], "not a duration"),
        (["service=api", "level=debug"], "must be one of error, warning"),
        (["service=api", "email=x@y.z;drop"], "not allowed"),
        (["service=api", "colour=red"], "unknown parameter `colour`"),
        (["service=api", "service=worker"], "given twice"),
        (["api", "worker"], "unexpected `worker`"),
    ],
)
def test_bad_values_are_refused_with_a_reason(words: list[str], message: str) -> None:
    with pytest.raises(ParamError, match=message.replace("(", r"\(")):
        bind_params(PARAMS, words, positional=["service"])


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("name", ["service", "minutes", "window", "level", "email"])
def test_hostile_text_is_refused_by_every_parameter_type(hostile: str, name: str) -> None:
    words = ["service=api", f"{name}={hostile}"] if name != "service" else [f"service={hostile}"]
    if " " in hostile or "\n" in hostile:
        words = [w for w in " ".join(words).split()]
    with pytest.raises(ParamError):
        bind_params(PARAMS, words)


def test_durations() -> None:
    assert [parse_duration(t) for t in ("45s", "30m", "2h", "1d")] == [45, 1800, 7200, 86400]


@functools.cache
def shipped_catalogue() -> Catalogue:
    return load_catalogue(Path(__file__).parents[2] / "runbooks")


@pytest.fixture
def catalogue() -> Catalogue:
    return shipped_catalogue()


def test_family_text_maps_to_a_runbook_with_typed_params(catalogue) -> None:  # type: ignore[no-untyped-def]
    request = parse_family("db", "connections idle_minutes=10", catalogue)
    assert request == RunRequest(runbook_id="db.connections", params={"idle_minutes": 10})


@pytest.mark.parametrize(
    "text",
    ["", "help", "frobnicate", "connections idle_minutes='; DROP TABLE x; --", "connections $(reboot)"],
)
def test_family_text_that_is_not_a_run_gets_usage(catalogue, text: str) -> None:  # type: ignore[no-untyped-def]
    answer = parse_family("db", text, catalogue)
    assert isinstance(answer, Usage)
    assert "/db connections" in answer.text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_typed_text_parses_to_a_request_or_usage(text: str) -> None:
    catalogue = shipped_catalogue()
    for family in catalogue.families():
        assert isinstance(parse_family(family, text, catalogue), RunRequest | Usage)
    assert isinstance(parse_run(text, catalogue), RunRequest | Usage)

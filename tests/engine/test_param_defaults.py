"""Site parameter defaults (`OPSBOT_PARAM_DEFAULTS`) over the shipped catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from bot.runbooks.catalogue import CatalogueError
from bot.runbooks.params import bind_params
from bot.runtime import load_runbooks_and_targets


def _catalogue(tmp_path: Path, overrides: str) -> object:
    settings = load_settings(OPSBOT_PARAM_DEFAULTS=overrides, OPSBOT_DATA_DIR=str(tmp_path))
    return load_runbooks_and_targets(settings)[0]


def test_an_override_changes_the_default_a_command_gets(tmp_path: Path) -> None:
    shipped = _catalogue(tmp_path, "")
    tuned = _catalogue(tmp_path, "db.connections.idle_minutes=5, logs.tail.service=api")
    for catalogue, expected in ((shipped, 30), (tuned, 5)):
        runbook = catalogue.get("db.connections")  # type: ignore[attr-defined]
        assert bind_params(runbook.params, [])["idle_minutes"] == expected
    assert bind_params(tuned.get("db.connections").params, ["idle_minutes=7"])["idle_minutes"] == 7  # type: ignore[attr-defined]
    assert bind_params(tuned.get("logs.tail").params, [])["service"] == "api"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ("db.connections.idle_minutes=99999", "db.connections.idle_minutes"),
        ("db.connections.no_such=1", "no such runbook parameter"),
        ("no.such.runbook.x=1", "no such runbook parameter"),
        ("db.connections.idle_minutes=abc", "db.connections.idle_minutes"),
        ("logs.tail.service=nginx", "logs.tail.service"),
        ("idle_minutes", "is not runbook.param=value"),
        ("db.connections.idle_minutes=", "is not runbook.param=value"),
    ],
)
def test_a_bad_override_stops_start_up_with_one_line_naming_the_setting(
    tmp_path: Path, overrides: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _catalogue(tmp_path, overrides)
    message = str(caught.value)
    assert message.startswith("OPSBOT_PARAM_DEFAULTS: ")
    assert problem in message
    assert "\n" not in message


def test_overrides_never_touch_the_loaded_catalogue_in_place(tmp_path: Path) -> None:
    from bot.runbooks.catalogue import load_catalogue
    from bot.runbooks.defaults import apply_param_defaults, parse_overrides

    base = load_catalogue(load_settings(OPSBOT_DATA_DIR=str(tmp_path)).runbooks_dir)
    tuned = apply_param_defaults(base, parse_overrides("db.connections.idle_minutes=0"))
    assert bind_params(base.get("db.connections").params, [])["idle_minutes"] == 30  # type: ignore[union-attr]
    assert bind_params(tuned.get("db.connections").params, [])["idle_minutes"] == 0  # type: ignore[union-attr]
    with pytest.raises(CatalogueError):
        apply_param_defaults(base, parse_overrides("db.connections.idle_minutes=-1"))

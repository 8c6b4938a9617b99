"""One loader, one error format for every YAML configuration file: `SETTING: file: location: message`."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from bot.approvals.policy import PolicyError, load_policy
from bot.config import ConfigError
from bot.incidents.severity import SeverityConfigError, load_severities
from bot.runbooks.catalogue import CatalogueError, load_catalogue
from bot.targets import TargetsError, load_targets
from bot.yaml_config import ConfigFileError, load_yaml_model


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z]+$")
    approvals: int = Field(1, ge=1, le=3)


class Rules(BaseModel):
    rules: list[Rule]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_problem_is_listed_with_its_place_in_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rules.yml",
        "rules:\n  - {name: ok}\n  - {name: ok, approvals: 2}\n  - {name: BAD, approvals: 9, colour: red}\n",
    )
    with pytest.raises(ConfigFileError) as caught:
        load_yaml_model(path, Rules, setting="OPSBOT_RULES")
    assert caught.value.problems == [
        f"OPSBOT_RULES: {path}: rules[2].name: String should match pattern '^[a-z]+$'",
        f"OPSBOT_RULES: {path}: rules[2].approvals: Input should be less than or equal to 3",
        f"OPSBOT_RULES: {path}: rules[2].colour: Extra inputs are not permitted",
    ]
    assert str(caught.value) == "\n".join(caught.value.problems)
    assert isinstance(caught.value, ConfigError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: [\n", r"line 2: invalid YAML: expected the node content"),
        ("rules: []\nrules: []\n", r"line 2: invalid YAML: duplicate key 'rules'"),
        ("- a\n", r"\(file\): Input should be a valid dictionary"),
        ("", r"rules: Field required"),
    ],
)
def test_what_is_not_the_model_is_one_problem_in_the_same_format(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, "rules.yml", text)
    with pytest.raises(ConfigFileError) as caught:
        load_yaml_model(path, Rules, setting="OPSBOT_RULES")
    assert re.fullmatch(f"OPSBOT_RULES: {re.escape(str(path))}: {expected}.*", str(caught.value))


def test_a_file_that_cannot_be_read_is_a_problem_with_the_whole_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_yaml_model(tmp_path / "absent.yml", Rules, setting="OPSBOT_RULES")
    absent = tmp_path / "absent.yml"
    assert str(caught.value) == f"OPSBOT_RULES: {absent}: (file): cannot read: No such file or directory"


def _runbooks(directory: Path) -> Any:
    return load_catalogue(directory.parent)


LOADERS: list[tuple[str, type[ConfigFileError], Callable[[Path], Any], str, str, str]] = [
    (
        "OPSBOT_POLICY",
        PolicyError,
        load_policy,
        "policy.yml",
        "defaults:\n  high: {approvals: 7}\noverrides:\n  db.locks: {approvers: []}\n",
        r'(defaults\.high\.approvals|overrides\["db\.locks"\]\.approvers): .+',
    ),
    (
        "OPSBOT_SEVERITIES",
        SeverityConfigError,
        load_severities,
        "severities.yml",
        "p9: {update_every_minutes: 5}\np0: {update_every_minutes: 0}\n",
        r"(p9|p0\.update_every_minutes): .+",
    ),
    (
        "OPSBOT_TARGETS",
        TargetsError,
        load_targets,
        "targets.yml",
        "targets:\n  db: {kind: postgres}\n  cache: {kind: redis, url: http://h}\n",
        r"(targets\.db\.dsn|targets\.cache\.url): .+",
    ),
    (
        "OPSBOT_RUNBOOKS",
        CatalogueError,
        _runbooks,
        "runbooks/broken.yml",
        "id: broken\ntitle: Broken\n",
        r"(summary|source): Field required",
    ),
]


@pytest.mark.parametrize(
    ("setting", "error", "load", "name", "text", "where"), LOADERS, ids=[row[0] for row in LOADERS]
)
def test_every_configuration_file_reports_problems_in_the_one_format(
    tmp_path: Path,
    setting: str,
    error: type[ConfigFileError],
    load: Callable[[Path], Any],
    name: str,
    text: str,
    where: str,
) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    with pytest.raises(error) as caught:
        load(path)
    assert isinstance(caught.value, ConfigFileError)
    assert len(caught.value.problems) == 2, caught.value.problems
    for line in str(caught.value).splitlines():
        assert re.fullmatch(f"{setting}: {re.escape(str(path))}: {where}", line), line

"""Reading a YAML configuration file into a pydantic model, with one error format for every file.

The policy, severities, targets and runbook files all load through `load_yaml_model`. Whatever is
wrong — the file cannot be read, the YAML does not parse, the content does not validate — the error
is a `ConfigFileError` (a `ConfigError`) with one line per problem, every problem in the file listed:

    OPSBOT_POLICY: /etc/opsbot/policy.yml: defaults.high.approvals: Input should be less than or equal to 3

`<setting>: <file>: <location>: <message>`, where the location is the path in the file
(`rules[2].approvals`, `line 4` for a YAML syntax error, `(file)` for the file as a whole).
Messages never quote the value that was given: targets files hold DSNs and tokens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.config import ConfigError

M = TypeVar("M", bound=BaseModel)

WHOLE_FILE = "(file)"
"""The location of a problem with the file as a whole."""

Location = Sequence[str | int]


class ConfigFileError(ConfigError):
    """A configuration file does not load; `problems` holds one `setting: file: location: message` each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class Invalid(ValueError):
    """What a `prepare` step raises: `(location, message)` problems, locations being paths into the
    parsed document."""

    def __init__(self, problems: Sequence[tuple[Location, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = list(problems)


def problem(setting: str, source: str, location: str, message: str) -> str:
    """One problem, in the one format every configuration file reports in."""
    return f"{setting}: {source}: {location or WHOLE_FILE}: {message}"


def load_yaml_model(
    path: Path,
    model: type[M],
    *,
    setting: str,
    error: type[ConfigFileError] = ConfigFileError,
    source: str | None = None,
    context: dict[str, Any] | None = None,
    prepare: Callable[[Any], Any] | None = None,
) -> M:
    """Read `path`, parse it (safe YAML, duplicate keys refused) and validate it as `model`.

    `source` is how the file is named in problems (default: the path); `context` goes to pydantic's
    validators; `prepare` may rewrite the parsed document first and raises `Invalid` to refuse it.
    Raises `error` (a `ConfigFileError` subclass) listing every problem.
    """
    source = str(path) if source is None else source
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error([problem(setting, source, WHOLE_FILE, f"cannot read: {exc.strerror or exc}")]) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader is a SafeLoader
    except yaml.YAMLError as exc:
        where, what = _yaml_problem(exc)
        raise error([problem(setting, source, where, f"invalid YAML: {what}")]) from None
    return validate_model(
        data, model, setting=setting, source=source, error=error, context=context, prepare=prepare
    )


def validate_model(
    data: Any,
    model: type[M],
    *,
    setting: str,
    source: str,
    error: type[ConfigFileError] = ConfigFileError,
    context: dict[str, Any] | None = None,
    prepare: Callable[[Any], Any] | None = None,
) -> M:
    """Validate an already parsed document (an empty file is an empty mapping) as `model`."""
    document = {} if data is None else data
    if prepare is not None:
        try:
            document = prepare(document)
        except Invalid as exc:
            found = [problem(setting, source, location(loc, document), text) for loc, text in exc.problems]
            raise error(found) from None
    try:
        return model.model_validate(document, context=context)
    except ValidationError as exc:
        details = exc.errors(include_input=False, include_url=False)
        raise error([problem(setting, source, *_describe(item, document)) for item in details]) from None


def location(loc: Location, document: Any) -> str:
    """`rules[2].approvals`: the path in the file, read along the document itself.

    Parts pydantic adds that are not in the document (the tag of a union member, `[key]` for a
    mapping key) are left out; the last part is kept even if absent (a field that is missing).
    """
    text = ""
    node = document
    for index, part in enumerate(loc):
        present = _child(node, part)
        if present is _ABSENT and (part == "[key]" or index < len(loc) - 1):
            continue
        node = present
        if isinstance(part, int) or not _PLAIN_KEY.fullmatch(part):
            text += f"[{json.dumps(part)}]"
        else:
            text += f".{part}" if text else part
    return text or WHOLE_FILE


_ABSENT = object()
# Keys written bare in a location; any other key is quoted (`overrides["db.connections"]`).
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, Mapping):
        return node.get(part, _ABSENT)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return _ABSENT


def _describe(item: ErrorDetails, document: Any) -> tuple[str, str]:
    """(location, message) for one of pydantic's errors, in words a person editing the file uses."""
    loc = list(item["loc"])
    message = item["msg"].removeprefix("Value error, ")
    ctx = item.get("ctx") or {}
    if item["type"] in ("union_tag_not_found", "union_tag_invalid"):
        field = str(ctx.get("discriminator", "")).strip("'")
        loc.append(field)
        message = "Field required"
        if item["type"] == "union_tag_invalid":
            expected = str(ctx.get("expected_tags", "")).replace("'", "")
            message = f"unknown {field} {ctx.get('tag')!r} (one of {expected})"
    return location(loc, document), message


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, which PyYAML would otherwise silently overwrite."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _yaml_problem(exc: yaml.YAMLError) -> tuple[str, str]:
    mark = getattr(exc, "problem_mark", None)
    what = str(getattr(exc, "problem", None) or str(exc).splitlines()[0])
    return (f"line {mark.line + 1}" if mark is not None else WHOLE_FILE), what

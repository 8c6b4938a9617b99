"""Alert routes (OPSBOT_ALERT_ROUTES): which channel, runbook, parameters and incident behaviour a
notification gets, decided from its labels before anything is done.

```yaml
routes:
  - name: db-connection-leak
    matchers: ['alertname="DatabaseConnectionLeak"', 'severity=~"warning|critical"']
    channel: db-alerts
    runbook: db.connections          # else the alert's `runbook` label / `runbook_url` annotation
    params: {idle_minutes: idle_minutes}   # runbook parameter <- label name
    severities: {critical: p0, warning: p2}
    declare: offer                   # auto | offer | never
    attach: true
default: {channel: alerts, declare: never}
```

Matchers use Alertmanager's syntax (`=`, `!=`, `=~`, `!~`; values quoted or not; regexes anchored at
both ends) and are tested against the notification's common labels (the first alert's labels when
there are none); a missing label matches as the empty string, as in Alertmanager. The first route
whose matchers all match wins and the default takes the rest: a group gets one card in one channel,
so there is nothing for Alertmanager's `continue: true` to do, and the file refuses it.

Label values are untrusted: runbook parameters taken from labels pass the runbook's own parameter
models (`Param.parse`, exactly what a value typed in Slack passes); a value that fails is dropped and
named in `RouteDecision.problems`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from bot.alerts.model import DeclareMode, Notification, RouteDecision
from bot.incidents.severity import SeverityName
from bot.runbooks.catalogue import Catalogue
from bot.runbooks.model import RUNBOOK_ID, Runbook
from bot.runbooks.params import NAME, ParamError
from bot.yaml_config import ConfigFileError, load_yaml_model

SETTING = "OPSBOT_ALERT_ROUTES"
DEFAULT_SEVERITIES: dict[str, SeverityName] = {"critical": "p0", "error": "p1", "warning": "p2", "info": "p3"}
# A service label names an incident's service: a plain lower-case name, nothing else.
SERVICE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
_MATCHER = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}

Operator = Literal["=", "!=", "=~", "!~"]


class RoutesError(ConfigFileError):
    """The routes file does not load; one `OPSBOT_ALERT_ROUTES: file: location: message` per problem."""


@dataclass(frozen=True)
class Matcher:
    """One Alertmanager matcher, e.g. `severity=~"warning|critical"`."""

    name: str
    op: Operator
    value: str
    pattern: re.Pattern[str] | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.pattern is not None:
            found = self.pattern.fullmatch(actual) is not None
            return found if self.op == "=~" else not found
        return (actual == self.value) if self.op == "=" else (actual != self.value)

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


def parse_matcher(text: str) -> Matcher:
    """`name op value` in Alertmanager's syntax; raises ValueError saying what is wrong."""
    found = _MATCHER.fullmatch(text)
    if found is None:
        raise ValueError(f'{text[:80]!r} is not a matcher like name="value" (operators = != =~ !~)')
    name, op, raw = found.groups()
    value = _unquote(raw)
    pattern = None
    if op in ("=~", "!~"):
        try:
            # Alertmanager anchors regex matchers at both ends; fullmatch does the same.
            pattern = re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression in {name}{op}: {exc}") from None
    return Matcher(name=name, op=op, value=value, pattern=pattern)  # type: ignore[arg-type]


def _unquote(raw: str) -> str:
    if not raw.startswith('"'):
        return raw
    if len(raw) < 2 or not raw.endswith('"'):
        raise ValueError("a quoted matcher value needs its closing quote")
    out: list[str] = []
    chars = iter(raw[1:-1])
    for char in chars:
        if char == '"':
            raise ValueError('a quote inside a matcher value must be escaped as \\"')
        if char == "\\":
            escaped = next(chars, "")
            if escaped not in _ESCAPES:
                raise ValueError('matcher values allow only the escapes \\\\, \\" and \\n')
            char = _ESCAPES[escaped]
        out.append(char)
    return "".join(out)


def _matcher(value: Any) -> Any:
    return parse_matcher(value) if isinstance(value, str) else value


MatcherField = Annotated[
    Matcher,
    BeforeValidator(_matcher),
    WithJsonSchema(
        {"type": "string", "description": 'Alertmanager matcher, e.g. severity=~"warning|critical"'}
    ),
]


class RouteAction(BaseModel):
    """What a matching route does: where the card goes, which runbook diagnoses it, incidents."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    channel: str = Field(
        pattern=r"^#?[A-Za-z0-9][A-Za-z0-9_-]{0,79}$",
        description="Slack channel name (with or without #) or id for the alert card",
    )
    runbook: str | None = Field(
        None, pattern=RUNBOOK_ID, max_length=60, description="catalogue runbook id that diagnoses the alert"
    )
    params: dict[
        Annotated[str, Field(pattern=NAME)], Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]
    ] = Field(default_factory=dict, description="runbook parameter name -> label name its value comes from")
    severities: dict[Annotated[str, Field(max_length=40)], SeverityName] | None = Field(
        None,
        description="`severity` label -> incident severity (default critical p0 error p1 warning p2 info p3)",
    )
    declare: DeclareMode = Field("never", description="auto: declare an incident; offer: a button; never")
    attach: bool = Field(True, description="attach to an open incident of the same `service` label")

    @model_validator(mode="after")
    def _known_runbook(self, info: ValidationInfo) -> RouteAction:
        catalogue = (info.context or {}).get("catalogue")
        if not isinstance(catalogue, Catalogue) or self.runbook is None:
            return self
        runbook = catalogue.get(self.runbook)
        if runbook is None:
            raise ValueError(f"runbook {self.runbook} is not in the catalogue")
        unknown = sorted(set(self.params) - {param.name for param in runbook.params})
        if unknown:
            raise ValueError(f"runbook {self.runbook} has no parameter {unknown[0]}")
        return self

    @property
    def channel_name(self) -> str:
        return self.channel.removeprefix("#")

    @property
    def severity_map(self) -> Mapping[str, SeverityName]:
        return DEFAULT_SEVERITIES if self.severities is None else self.severities


class Route(RouteAction):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    matchers: list[MatcherField] = Field(min_length=1, max_length=30)
    continue_: Literal[False] = Field(
        False,
        alias="continue",
        description="always false: the first matching route wins (one card per group, in one channel)",
    )

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(matcher.matches(labels) for matcher in self.matchers)


class RoutesFile(BaseModel):
    """The whole routes file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    routes: list[Route] = Field(default_factory=list, max_length=500)
    default: RouteAction = Field(default_factory=lambda: RouteAction(channel="alerts"))

    @model_validator(mode="after")
    def _unique_names(self) -> RoutesFile:
        names = [route.name for route in self.routes]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"route names repeated: {', '.join(repeated)}")
        return self


def routes_schema() -> dict[str, Any]:
    """JSON Schema of the routes file, for editors (`opsbot alerts schema`)."""
    return RoutesFile.model_json_schema(by_alias=True)


class AlertRoutes:
    """The loaded routes; `decide` says what a notification should do."""

    def __init__(self, routes: RoutesFile | None = None) -> None:
        self.file = routes or RoutesFile()

    def route_for(self, notification: Notification) -> tuple[str, RouteAction]:
        labels = matching_labels(notification)
        for route in self.file.routes:
            if route.matches(labels):
                return route.name, route
        return "default", self.file.default

    def decide(self, notification: Notification, catalogue: Catalogue) -> RouteDecision:
        name, route = self.route_for(notification)
        labels = matching_labels(notification)
        problems: list[str] = []
        runbook = _runbook(route, notification, labels, catalogue, problems)
        return RouteDecision(
            route=name,
            channel=route.channel_name,
            runbook_id=runbook.id if runbook else None,
            params=_params(route, runbook, labels, problems) if runbook else {},
            severity=_severity(route, labels, problems),
            declare=route.declare,
            attach=route.attach,
            service=_service(labels, problems),
            problems=problems,
        )


def load_routes(path: Path | None, catalogue: Catalogue | None = None) -> AlertRoutes:
    """OPSBOT_ALERT_ROUTES validated (runbooks and their parameters checked against `catalogue`);
    without a file, every notification takes the default route (#alerts, never declare)."""
    if path is None:
        return AlertRoutes()
    context = {"catalogue": catalogue} if catalogue is not None else None
    return AlertRoutes(load_yaml_model(path, RoutesFile, setting=SETTING, error=RoutesError, context=context))


def matching_labels(notification: Notification) -> dict[str, str]:
    """The labels routes test: the group's common labels, or the first alert's when there are none."""
    return notification.common_labels or notification.alerts[0].labels


def _annotations(notification: Notification) -> dict[str, str]:
    return notification.common_annotations or notification.alerts[0].annotations


def _runbook(
    route: RouteAction,
    notification: Notification,
    labels: Mapping[str, str],
    catalogue: Catalogue,
    problems: list[str],
) -> Runbook | None:
    """The route's runbook, else the `runbook` label, else the id `runbook_url` ends with."""
    if route.runbook is not None:
        return _known(route.runbook, "the route's runbook", catalogue, problems)
    if "runbook" in labels:
        return _known(labels["runbook"], "label runbook", catalogue, problems)
    url = _annotations(notification).get("runbook_url")
    if url:
        for candidate in _url_candidates(url):
            if catalogue.get(candidate) is not None:
                return catalogue.get(candidate)
        problems.append("annotation runbook_url does not name a runbook in the catalogue")
    return None


def _known(runbook_id: str, where: str, catalogue: Catalogue, problems: list[str]) -> Runbook | None:
    runbook = catalogue.get(runbook_id)
    if runbook is None:
        shown = runbook_id[:60] if re.fullmatch(RUNBOOK_ID, runbook_id[:60]) else "(not a runbook id)"
        problems.append(f"{where}: {shown} is not a runbook in the catalogue")
    return runbook


def _url_candidates(url: str) -> list[str]:
    """`…/runbooks/db.connections`, `…/runbooks.html#db.connections`: the fragment, then the last path
    segment (with and without a file extension such as `.md`)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return [item for item in (parts.fragment, last, last.rsplit(".", 1)[0]) if item]


def _params(
    route: RouteAction, runbook: Runbook, labels: Mapping[str, str], problems: list[str]
) -> dict[str, str]:
    """Label values for the runbook's parameters, each checked as if typed in Slack."""
    declared = {param.name: param for param in runbook.params}
    accepted: dict[str, str] = {}
    for param_name, label in route.params.items():
        param = declared.get(param_name)
        if param is None or label not in labels:
            continue
        try:
            param.parse(labels[label])
        except ParamError as exc:
            problems.append(f"label {label} dropped: {exc}")
            continue
        accepted[param_name] = labels[label]
    for param in runbook.params:
        if param.required and param.name not in accepted and param.default_value() is None:
            problems.append(f"runbook {runbook.id} needs `{param.name}` and the alert gives no valid value")
    return accepted


def _severity(route: RouteAction, labels: Mapping[str, str], problems: list[str]) -> SeverityName | None:
    value = labels.get("severity")
    if value is None:
        return None
    severity = route.severity_map.get(value.strip().lower())
    if severity is None:
        problems.append("label severity is not one the route maps to an incident severity")
    return severity


def _service(labels: Mapping[str, str], problems: list[str]) -> str | None:
    value = labels.get("service")
    if value is None:
        return None
    if not SERVICE.fullmatch(value):
        problems.append("label service is not a plain service name (a-z, 0-9, . _ -)")
        return None
    return value

"""Site-specific parameter defaults (`OPSBOT_PARAM_DEFAULTS`) laid over the shipped catalogue.

A team tunes a threshold — say, idle connections count as stuck after 5 minutes instead of the
seed's 30 — without forking the runbook file. Each override is checked exactly as if a person
had typed the value, so it cannot widen what the runbook accepts.
"""

from __future__ import annotations

from bot.runbooks.catalogue import Catalogue, CatalogueError
from bot.runbooks.params import ParamError


def parse_overrides(text: str) -> dict[tuple[str, str], str]:
    """'db.connections.idle_minutes=5, db.locks.min_wait=1m' → {(runbook, param): value}."""
    overrides: dict[tuple[str, str], str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        runbook_id, dot, param = key.strip().rpartition(".")
        if not sep or not dot or not runbook_id or not param or not value.strip():
            raise CatalogueError([f"`{item}` is not runbook.param=value"])
        overrides[(runbook_id, param)] = value.strip()
    return overrides


def apply_param_defaults(catalogue: Catalogue, overrides: dict[tuple[str, str], str]) -> Catalogue:
    """A copy of `catalogue` with the overridden defaults; every problem is reported at once."""
    problems: list[str] = []
    runbooks = dict(catalogue.runbooks)
    for (runbook_id, name), raw in overrides.items():
        runbook = runbooks.get(runbook_id)
        param = next((p for p in runbook.params if p.name == name), None) if runbook else None
        if runbook is None or param is None:
            problems.append(f"{runbook_id}.{name}: no such runbook parameter")
            continue
        try:
            param.parse(raw)
            replaced = type(param).model_validate({**param.model_dump(), "default": raw})
        except (ParamError, ValueError) as exc:
            problems.append(f"{runbook_id}.{name}: {str(exc).splitlines()[0]}")
            continue
        params = [replaced if p.name == name else p for p in runbook.params]
        runbooks[runbook_id] = runbook.model_copy(update={"params": params})
    if problems:
        raise CatalogueError(problems)
    return Catalogue(runbooks=runbooks, files=dict(catalogue.files))

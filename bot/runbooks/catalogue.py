"""Loading the runbook catalogue from YAML files, and the checks `opsbot runbooks check` runs.

A probe or action may say `sql_file: name.sql` instead of `sql:`; the file is read relative to
the YAML file and must stay inside the catalogue directory. A check or preview that selects every
column (`SELECT *`, `t.*`, `TABLE name`) is refused at load: see `select_star`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pglast.parser import ParseError, scan

from bot.runbooks.model import RISK_ORDER, Runbook
from bot.runbooks.steps import PostgresWrite
from bot.yaml_config import WHOLE_FILE, ConfigFileError, Invalid, load_yaml_model, problem

SETTING = "OPSBOT_RUNBOOKS"


class CatalogueError(ConfigFileError):
    """The catalogue does not load; `problems` says which file, where in it and what."""


@dataclass
class Catalogue:
    runbooks: dict[str, Runbook] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Runbook]:
        return iter(self.runbooks.values())

    def __len__(self) -> int:
        return len(self.runbooks)

    def get(self, runbook_id: str) -> Runbook | None:
        return self.runbooks.get(runbook_id)

    def families(self) -> dict[str, list[Runbook]]:
        """Runbooks that answer a slash command, grouped by command family, in id order."""
        grouped: dict[str, list[Runbook]] = {}
        for runbook in sorted(self, key=lambda r: r.id):
            if runbook.command:
                grouped.setdefault(runbook.command.family, []).append(runbook)
        return grouped

    def for_command(self, family: str, subcommand: str | None) -> Runbook | None:
        for runbook in self:
            if (
                runbook.command
                and runbook.command.family == family
                and runbook.command.subcommand == subcommand
            ):
                return runbook
        return None


def load_catalogue(directory: Path) -> Catalogue:
    """Load and validate every `*.yml` under `directory`; raise `CatalogueError` listing all problems."""
    catalogue = Catalogue()
    problems: list[str] = []
    root = directory.resolve()
    if not root.is_dir():
        raise CatalogueError([problem(SETTING, str(directory), WHOLE_FILE, "runbook directory not found")])
    for path in sorted(root.rglob("*.yml")):
        rel = path.relative_to(root)
        try:
            runbook = load_yaml_model(
                path,
                Runbook,
                setting=SETTING,
                error=CatalogueError,
                source=str(directory / rel),
                prepare=partial(_inline_sql_files, base=path.parent, root=root, where=()),
            )
        except CatalogueError as exc:
            problems += exc.problems
            continue
        if runbook.id in catalogue.runbooks:
            other = directory / catalogue.files[runbook.id]
            problems.append(
                problem(SETTING, str(directory / rel), "id", f"{runbook.id} is also used by {other}")
            )
            continue
        star = _select_star_problems(runbook, str(directory / rel))
        if star:
            problems += star
            continue
        catalogue.runbooks[runbook.id] = runbook
        catalogue.files[runbook.id] = rel
    problems += _cross_references(catalogue, directory)
    if problems:
        raise CatalogueError(problems)
    return catalogue


def _select_star_problems(runbook: Runbook, source: str) -> list[str]:
    """Checks and previews must name their columns: `SELECT *` shows whatever a table holds today
    and tomorrow — session tokens, password hashes, columns added after the runbook was reviewed."""
    probes = [(f"checks[{i}].probe.sql", f"check {c.id}", c.probe) for i, c in enumerate(runbook.checks)]
    probes += [
        (f"actions[{i}].preview.sql", f"action {a.id} preview", a.preview)
        for i, a in enumerate(runbook.actions)
        if a.preview is not None
    ]
    problems = []
    for location, what, probe in probes:
        if probe.kind != "postgres":
            continue
        why = select_star(probe.sql)
        if why:
            problems.append(problem(SETTING, source, location, f"runbook {runbook.id}: {what}: {why}"))
    return problems


# Tokens after which `*` means "every column": `SELECT *`, `SELECT DISTINCT *`, `SELECT ALL *`,
# `SELECT a, *`, `SELECT t.*`. Elsewhere it is multiplication or `count(*)`.
_STAR_AFTER = frozenset({"SELECT", "DISTINCT", "ALL", "ASCII_44", "ASCII_46"})
_COMMENTS = frozenset({"SQL_COMMENT", "C_COMMENT"})


def select_star(sql: str) -> str | None:
    """Why `sql` selects every column (`SELECT *` in any spelling, or `TABLE name`), or None.

    Read with PostgreSQL's own lexer (pglast), so a `*` inside a string, a quoted name or a comment
    is not mistaken for one, whatever the case and spacing."""
    try:
        tokens = [t for t in scan(sql) if t.name not in _COMMENTS]
    except ParseError as exc:
        return f"the SQL does not read as PostgreSQL: {exc.args[0]}"
    previous: list[str] = []
    opened_by_distinct_on: list[bool] = []
    for token in tokens:
        name = token.name
        after = previous[-1] if previous else None
        if name == "ASCII_40":
            opened_by_distinct_on.append(previous[-2:] == ["DISTINCT", "ON"])
        elif name == "ASCII_41" and opened_by_distinct_on:
            name = "DISTINCT" if opened_by_distinct_on.pop() else name
        elif name == "ASCII_42" and after in _STAR_AFTER:
            return "SELECT * (or t.*) selects every column; name the columns the check needs"
        elif name == "TABLE" and after in (None, "ASCII_40", "ASCII_41", "EXPLAIN"):
            return "TABLE name selects every column; SELECT the columns the check needs"
        previous.append(name)
    return None


def _inline_sql_files(node: Any, base: Path, root: Path, where: tuple[str | int, ...]) -> Any:
    """`sql_file: name.sql` becomes `sql:` with that file's text (relative to the YAML file, inside
    the catalogue directory)."""
    if isinstance(node, dict):
        out = {k: _inline_sql_files(v, base, root, (*where, k)) for k, v in node.items() if k != "sql_file"}
        if "sql_file" in node:
            out["sql"] = _read_sql_file(node, base, root, (*where, "sql_file"))
        return out
    if isinstance(node, list):
        return [_inline_sql_files(item, base, root, (*where, i)) for i, item in enumerate(node)]
    return node


def _read_sql_file(node: dict[str, Any], base: Path, root: Path, where: tuple[str | int, ...]) -> str:
    if "sql" in node:
        raise Invalid([(where, "give either sql or sql_file, not both")])
    target = (base / str(node["sql_file"])).resolve()
    if root not in target.parents:
        raise Invalid([(where, f"{node['sql_file']} is outside the catalogue")])
    try:
        return target.read_text(encoding="utf-8")
    except OSError as exc:
        raise Invalid([(where, f"cannot read {node['sql_file']}: {exc.strerror or exc}")]) from None


def _cross_references(catalogue: Catalogue, directory: Path) -> list[str]:
    problems = []
    commands: dict[str, str] = {}
    for runbook in catalogue:
        source = str(directory / catalogue.files[runbook.id])
        for i, step in enumerate(runbook.next):
            for j, ref in enumerate(step.suggest):
                kind, _, name = ref.partition(":")
                if kind == "runbook" and name not in catalogue.runbooks:
                    problems.append(
                        problem(SETTING, source, f"next[{i}].suggest[{j}]", f"unknown runbook {name}")
                    )
        if runbook.command:
            key = runbook.command.text
            if key in commands:
                problems.append(
                    problem(SETTING, source, "command", f"{key} is also answered by {commands[key]}")
                )
            commands[key] = runbook.id
    return problems


# --- lint: what a schema cannot say -------------------------------------------------------------

_WRITE_WORDS = re.compile(
    r"\b(insert|update|delete|merge|drop|alter|create|truncate|grant|revoke|copy|vacuum|reindex|cluster|"
    r"refresh|lock|call|do|execute|prepare|listen|notify|set|reset|comment|security|import|"
    r"pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile|set_config|"
    r"pg_advisory_lock|pg_advisory_xact_lock|lo_import|lo_export|pg_read_file|pg_read_binary_file)\b",
    re.I,
)
_STRINGS_AND_COMMENTS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.S)
_PLACEHOLDER = re.compile(r"%(\((?P<name>[A-Za-z_][A-Za-z0-9_]*)\))?(?P<conv>[sbt%])?")


def _strip(sql: str) -> str:
    return _STRINGS_AND_COMMENTS.sub(" ", sql)


def sql_problems(sql: str, binds: dict[str, Any], *, read_only: bool) -> list[str]:
    """Problems with one SQL text: string interpolation, several statements, writes where reads belong."""
    problems = []
    bare = _strip(sql)
    for match in _PLACEHOLDER.finditer(bare):
        if match.group(0) == "%%":
            continue
        name = match.group("name")
        if name is None or match.group("conv") != "s":
            problems.append(
                f"`{match.group(0)}` is not a named bind parameter %(name)s (write %% for a literal %)"
            )
        elif name not in binds:
            problems.append(f"%({name})s has no entry in binds")
    for name in binds:
        if f"%({name})s" not in bare:
            problems.append(f"bind {name} is never used in the SQL")
    if "{" in bare or "}" in bare:
        problems.append("braces in SQL look like string formatting; use bind parameters")
    if bare.strip().rstrip(";").count(";"):
        problems.append("more than one statement")
    if read_only:
        first = bare.strip().split(None, 1)[0].lower() if bare.strip() else ""
        if first not in ("select", "with", "show", "values", "explain", "table"):
            problems.append(f"a read-only check starts with {first.upper() or 'nothing'}")
        write = _WRITE_WORDS.search(bare)
        if write:
            problems.append(f"a read-only check uses {write.group(0).upper()}")
        if re.search(r"\bexplain\b[^;]*\banalyze\b", bare, re.I):
            problems.append("EXPLAIN ANALYZE executes the statement; not allowed in a read-only check")
    return problems


def lint(catalogue: Catalogue, seeds_dir: Path | None = None) -> list[str]:
    """Everything `opsbot runbooks check` reports beyond schema errors."""
    problems: list[str] = []
    seeds = _seed_texts(seeds_dir)
    for runbook in catalogue:
        where = str(catalogue.files[runbook.id])
        for check in runbook.checks:
            if check.probe.kind == "postgres":
                problems += [
                    f"{where}: check {check.id}: {p}"
                    for p in sql_problems(check.probe.sql, dict(check.probe.binds), read_only=True)
                ]
        for action in runbook.actions:
            if action.preview is not None and action.preview.kind == "postgres":
                problems += [
                    f"{where}: action {action.id} preview: {p}"
                    for p in sql_problems(action.preview.sql, dict(action.preview.binds), read_only=True)
                ]
            if isinstance(action.step, PostgresWrite):
                problems += [
                    f"{where}: action {action.id}: {p}"
                    for p in sql_problems(action.step.sql, dict(action.step.binds), read_only=False)
                ]
            changes_state = action.step.kind != "manual"
            if changes_state and RISK_ORDER[action.risk] == 0:
                problems.append(f"{where}: action {action.id} changes state but is marked read_only")
            if action.restarts_service and RISK_ORDER[action.risk] < 2:
                problems.append(
                    f"{where}: action {action.id} restarts a service: risk must be high or critical"
                )
        if seeds:
            text = seeds.get(runbook.source.seed)
            if text is None:
                problems.append(f"{where}: source seed {runbook.source.seed} does not exist")
            elif _norm(runbook.source.section.split("›")[-1]) not in _norm(text):
                problems.append(
                    f"{where}: section '{runbook.source.section}' not found in {runbook.source.seed}"
                )
    return problems


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _seed_texts(seeds_dir: Path | None) -> dict[str, str]:
    if seeds_dir is None or not seeds_dir.is_dir():
        return {}
    return {p.name: p.read_text(encoding="utf-8", errors="replace") for p in seeds_dir.glob("*.txt")}

"""`opsbot runbooks …`: validate the catalogue, list it, export its schema, run a diagnosis in a terminal."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from bot.config import Settings, load_settings
from bot.logs import configure_logging
from bot.probes import ProbeRunner
from bot.probes.base import ProbeSpecError
from bot.render.diagnosis import EMOJI, LABEL, value_words
from bot.render.table import plain_table
from bot.runbooks.catalogue import Catalogue, CatalogueError, lint, load_catalogue
from bot.runbooks.coverage import count, markdown
from bot.runbooks.engine import diagnose
from bot.runbooks.model import Runbook
from bot.runbooks.params import ParamError, bind_params
from bot.targets import Targets, load_targets

runbooks_cli = typer.Typer(help="Validate, list and run the runbook catalogue.", no_args_is_help=True)

SEEDS_DIR = Path(__file__).resolve().parents[2] / "shared" / "seeds"


def _settings() -> Settings:
    settings = load_settings()
    configure_logging("warning", settings.log_format)
    return settings


def _catalogue(settings: Settings) -> Catalogue:
    try:
        return load_catalogue(settings.runbooks_dir)
    except CatalogueError as exc:
        for problem in exc.problems:
            typer.echo(f"✗ {problem}", err=True)
        raise typer.Exit(1) from None


def _targets(settings: Settings) -> Targets | None:
    return None if settings.targets_file is None else load_targets(settings.targets_file)


@runbooks_cli.command("check")
def check(
    seeds: Annotated[Path | None, typer.Option(help="Seed runbooks to check `source` against")] = None,
) -> None:
    """Validate every runbook: schema, SQL safety, risk, sources (and targets when OPSBOT_TARGETS is set)."""
    settings = _settings()
    catalogue = _catalogue(settings)
    problems = lint(catalogue, seeds or (SEEDS_DIR if SEEDS_DIR.is_dir() else None))
    targets = _targets(settings)
    if targets is not None:
        runner = ProbeRunner(targets)
        for runbook in catalogue:
            specs = [(f"check {c.id}", c.probe) for c in runbook.checks]
            specs += [(f"action {a.id} preview", a.preview) for a in runbook.actions if a.preview is not None]
            for where, spec in specs:
                try:
                    runner.check(spec)
                except ProbeSpecError as exc:
                    problems.append(f"{catalogue.files[runbook.id]}: {where}: {exc}")
    for problem in problems:
        typer.echo(f"✗ {problem}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"✓ {len(catalogue)} runbooks in {settings.runbooks_dir} are valid")


@runbooks_cli.command("list")
def list_runbooks() -> None:
    """Every runbook with its command, checks, actions and highest risk."""
    catalogue = _catalogue(_settings())
    rows = [
        [r.id, r.command.text if r.command else "-", len(r.checks), len(r.actions), r.max_risk, r.title]
        for r in sorted(catalogue, key=lambda r: r.id)
    ]
    typer.echo(plain_table(["id", "command", "checks", "actions", "max risk", "title"], rows))


@runbooks_cli.command("schema")
def schema() -> None:
    """The JSON Schema of a runbook file, for editors."""
    typer.echo(json.dumps(Runbook.model_json_schema(), indent=2))


@runbooks_cli.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(ctx: typer.Context, runbook_id: str) -> None:
    """Run a diagnosis against OPSBOT_TARGETS and print it: `… run db.connections idle_minutes=10`."""
    settings = _settings()
    catalogue = _catalogue(settings)
    runbook = catalogue.get(runbook_id)
    if runbook is None:
        typer.echo(f"no runbook {runbook_id!r}; `opsbot runbooks list` shows them", err=True)
        raise typer.Exit(2)
    try:
        params = bind_params(
            list(runbook.params), list(ctx.args), runbook.command.positional if runbook.command else []
        )
    except ParamError as exc:
        typer.echo(f"{exc}", err=True)
        raise typer.Exit(2) from None
    targets = _targets(settings) or Targets({}, source="(no OPSBOT_TARGETS)")

    async def go() -> None:
        async with ProbeRunner(targets) as runner:
            diagnosis = await diagnose(runbook, params, runner)
        took = f"{diagnosis.duration_ms:.0f} ms"
        typer.echo(f"{EMOJI[diagnosis.overall]} {runbook.title}: {LABEL[diagnosis.overall]} ({took})")
        rows = [
            [
                LABEL[c.status],
                c.title,
                c.reason if c.status == "unknown" or (c.value is None and c.reason) else value_words(c.value),
                c.threshold,
            ]
            for c in diagnosis.checks
        ]
        typer.echo(plain_table(["status", "check", "value", "threshold"], rows))
        for outcome in diagnosis.checks:
            if outcome.result.columns and (check := runbook.check(outcome.check_id)) and check.show_rows:
                typer.echo(f"\n{outcome.title}:\n{plain_table(outcome.result.columns, outcome.result.rows)}")
        for suggestion in diagnosis.suggestions:
            typer.echo(f"→ suggested {suggestion.kind}: {suggestion.ref} {suggestion.note}")
        for step in runbook.manual:
            typer.echo(f"☐ manual: {step}")

    asyncio.run(go())


@runbooks_cli.command("coverage")
def coverage(
    as_markdown: Annotated[
        bool, typer.Option("--markdown", help="The table runbooks/README.md embeds")
    ] = False,
) -> None:
    """Per seed: runbooks, checks, approved and read-only actions, manual steps, procedures left out."""
    settings = _settings()
    rows = count(_catalogue(settings), settings.runbooks_dir / "README.md")
    if as_markdown:
        typer.echo(markdown(rows))
        return
    header = ["seed", "procedures", "left out", "runbooks", "checks", "approved", "read-only", "manual steps"]
    fields = ["seed", "procedures", "left_out", "runbooks", "checks", "approved_actions", "read_only_actions"]
    table = [[getattr(r, name) for name in [*fields, "manual_steps"]] for r in rows]
    typer.echo(plain_table(header, table))

"""The `opsbot` command line: serve, migrate, manifest, audit, targets, version, demo."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import psycopg
import typer

from bot import __version__
from bot.cli_alerts import alerts_cli
from bot.cli_runbooks import runbooks_cli
from bot.config import ConfigError, Settings, load_settings
from bot.logs import configure_logging

T = TypeVar("T")

cli = typer.Typer(
    name="opsbot",
    help="opsbot: runbooks as executable, audited Slack workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
audit_cli = typer.Typer(help="Inspect the append-only audit log.", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")
cli.add_typer(runbooks_cli, name="runbooks")
cli.add_typer(alerts_cli, name="alerts")
targets_cli = typer.Typer(help="Inspect the targets registry (OPSBOT_TARGETS).", no_args_is_help=True)
cli.add_typer(targets_cli, name="targets")


def _settings(**overrides: Any) -> Settings:
    settings = load_settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@cli.command()
def serve() -> None:
    """Run the bot: Slack endpoint (or Socket Mode), /health, /ready and /metrics."""
    from bot.server import loop_factory
    from bot.server import serve as serve_forever

    settings = _settings()
    with asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as runner:
        runner.run(serve_forever(settings))


@cli.command()
def demo(
    port: Annotated[int, typer.Option(help="Port of the local Slack web page (0 = any free port)")] = 8080,
) -> None:
    """A whole incident in the browser: local Slack, the bot and a sick system, all on this machine."""
    try:
        from bot.demo.run import run_demo
    except ModuleNotFoundError:
        typer.echo("The demo is not part of this installation (the production image leaves it out).")
        raise typer.Exit(2) from None
    settings = _settings()
    # The terminal shows the URL and what goes wrong; OPSBOT_LOG_LEVEL=info brings the full log back.
    configure_logging(os.environ.get("OPSBOT_LOG_LEVEL", "warning"), settings.log_format)
    _run(run_demo(settings.data_dir, port))


@cli.command()
def migrate() -> None:
    """Apply pending database migrations (also done at start-up)."""
    from bot.runtime import run_migrations

    applied = _run(run_migrations(_settings()))
    if applied:
        for migration in applied:
            typer.echo(f"applied {migration.version:04d}_{migration.name}")
    else:
        typer.echo("schema is current")


@cli.command()
def manifest(
    request_url: Annotated[
        str, typer.Option(help="Public URL of /slack/events (HTTP mode)")
    ] = "https://opsbot.example.com/slack/events",
    socket_mode: Annotated[bool, typer.Option(help="Manifest for Socket Mode (no URLs)")] = False,
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout")] = None,
) -> None:
    """Print the Slack app manifest with every command, scope and event the bot uses."""
    from bot.manifest import insecure_url_warning, manifest_yaml
    from bot.runtime import load_runbooks_and_targets

    warning = insecure_url_warning(request_url, socket_mode=socket_mode)
    if warning is not None:
        typer.echo(warning, err=True)
    runbooks, _ = load_runbooks_and_targets(_settings())
    text = manifest_yaml(runbooks, request_url, socket_mode=socket_mode)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)


@cli.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}
)
def localslack(ctx: typer.Context) -> None:
    """Run the local Slack workspace (Web API + driver) for a bot to talk to; --help for options."""
    try:
        from localslack.cli import main as localslack_main
    except ModuleNotFoundError:
        # The production image leaves the development tools out.
        typer.echo("localslack is a development tool, not part of this installation (install from source).")
        raise typer.Exit(2) from None
    raise typer.Exit(localslack_main(list(ctx.args)))


@cli.command()
def version() -> None:
    """Print the opsbot version."""
    typer.echo(__version__)


@targets_cli.command("sudoers")
def targets_sudoers(target: Annotated[str, typer.Argument(help="An SSH command target's name")]) -> None:
    """Print the sudoers lines the target's `ssh.sudo` programs need on its host."""
    from bot.targets import CommandTarget, UnknownTarget, load_targets
    from bot.transport.sudoers import sudoers_text

    settings = _settings()
    if settings.targets_file is None:
        typer.echo("OPSBOT_TARGETS is not set: there are no targets to read.", err=True)
        raise typer.Exit(2)
    try:
        found = load_targets(settings.targets_file).get_kind(target, CommandTarget)
        typer.echo(sudoers_text(target, found), nl=False)
    except (UnknownTarget, ValueError) as exc:
        typer.echo(str(exc).strip("'\""), err=True)
        raise typer.Exit(2) from None


async def _with_store(settings: Settings, work: Any) -> Any:
    from bot.store.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(settings.data_dir) if settings.database_url is None else None
    dsn = await embedded.start() if embedded else settings.database_url.get_secret_value()  # type: ignore[union-attr]
    try:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            return await work(conn)
    finally:
        if embedded:
            await embedded.stop()


@cli.command()
def postmortem(
    incident_id: str,
    out: Annotated[Path | None, typer.Option(help="Write the Markdown here instead of stdout")] = None,
) -> None:
    """Draft the post-incident review of INCIDENT_ID (reads its channel when SLACK_BOT_TOKEN is set)."""
    from bot.cli_postmortem import draft_review

    markdown = _run(draft_review(_settings(), incident_id.upper()))
    if out is None:
        typer.echo(markdown, nl=False)
    else:
        out.write_text(markdown, encoding="utf-8")
        typer.echo(f"wrote {out}")


@audit_cli.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain from the first row to the last."""
    from bot import audit

    report = _run(_with_store(_settings(), audit.verify))
    if report.ok:
        typer.echo(f"audit chain ok: {report.rows} events")
        return
    typer.echo(f"audit chain BROKEN at event {report.first_bad_id}: {report.reason}", err=True)
    raise typer.Exit(1)


@audit_cli.command("show")
def audit_show(limit: Annotated[int, typer.Option(min=1, max=1000)] = 20) -> None:
    """List the most recent audit events."""
    from bot import audit

    async def recent(conn: psycopg.AsyncConnection[Any]) -> list[audit.AuditRecord]:
        return await audit.recent(conn, limit)

    for record in reversed(_run(_with_store(_settings(), recent))):
        typer.echo(
            f"{record.at:%Y-%m-%d %H:%M:%S} #{record.id} {record.actor} {record.action} "
            f"{record.subject or '-'} → {record.outcome}"
        )


def main() -> None:
    """Console-script entry point: configuration problems end in one line, not a traceback."""
    try:
        cli()
    except ConfigError as exc:
        for line in str(exc).splitlines():
            typer.echo(f"opsbot: {line}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)

"""One running bot's services and their lifecycle: store, coordination, Slack client, tasks.

`Runtime.start` brings everything up in order (embedded database if no DATABASE_URL, pool,
migrations, Redis or in-process coordination); `close` takes it down in reverse. Handlers get
the runtime passed in when they are registered — there is no module-level state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jinja2
import psycopg
from psycopg_pool import AsyncConnectionPool

from bot.actions import ActionExecutor
from bot.approvals.policy import PolicyError, load_policy
from bot.config import ConfigError, Settings
from bot.coordination import MemoryCoordinator, RedisCoordinator, create_coordinator
from bot.incidents.severity import SeverityConfigError, load_severities
from bot.incidents.store import IncidentStore
from bot.jobs import JobQueue
from bot.logs import get_logger, redact_text, redactor
from bot.metrics import Metrics
from bot.paging import Pager
from bot.postmortem.render import load_template
from bot.probes import ProbeRunner
from bot.runbooks.catalogue import Catalogue, CatalogueError, load_catalogue
from bot.runbooks.defaults import apply_param_defaults, parse_overrides
from bot.services.approval_cards import expire_due, recover_stranded
from bot.services.approvals import ApprovalService
from bot.services.diagnoses import DiagnosisService
from bot.services.incidents import IncidentService, parse_tiers
from bot.services.reviews import ReviewService
from bot.services.schedules import run_due
from bot.slack.client import InstrumentedWebClient, create_web_client
from bot.slack.directory import Directory
from bot.slack.outage import notice_for, tell_requester
from bot.slack.outbox import Outbox
from bot.store import migrations
from bot.store.embedded import EmbeddedPostgres
from bot.store.pool import create_pool
from bot.targets import Targets, TargetsError, load_targets
from bot.tasks import TaskTracker

log = get_logger(__name__)


@dataclass
class Runtime:
    settings: Settings
    pool: AsyncConnectionPool
    coordinator: MemoryCoordinator | RedisCoordinator
    metrics: Metrics
    tasks: TaskTracker
    runbooks: Catalogue
    targets: Targets
    diagnoses: DiagnosisService
    slack: InstrumentedWebClient
    executor: ActionExecutor
    approvals: ApprovalService
    jobs: JobQueue
    incidents: IncidentService
    reviews: ReviewService
    outbox: Outbox
    embedded: EmbeddedPostgres | None = None
    dsn: str = field(default="", repr=False)

    @classmethod
    async def start(cls, settings: Settings, *, metrics: Metrics | None = None) -> Runtime:
        metrics = metrics or Metrics()
        _remember_secrets(settings)
        runbooks, targets = load_runbooks_and_targets(settings)
        try:
            policy = load_policy(settings.policy_file)
        except PolicyError as exc:
            raise ConfigError(f"OPSBOT_POLICY: {exc}") from None
        try:
            template = load_template(settings.review_template)
        except (OSError, jinja2.TemplateError) as exc:
            raise ConfigError(f"OPSBOT_REVIEW_TEMPLATE: {exc}") from None
        try:
            severities = load_severities(settings.severities_file)
        except SeverityConfigError as exc:
            raise ConfigError(f"OPSBOT_SEVERITIES: {exc}") from None
        redactor.known.update(targets.secrets())
        embedded: EmbeddedPostgres | None = None
        if settings.database_url is None:
            embedded = EmbeddedPostgres(settings.data_dir)
            dsn = await embedded.start()
            log.info("embedded_postgres_started", data_dir=str(embedded.pgdata))
        else:
            dsn = settings.database_url.get_secret_value()
        try:
            await _migrate(dsn)
            pool = create_pool(dsn)
            await pool.open(wait=True, timeout=10)
        except BaseException:
            if embedded is not None:
                await embedded.stop()
            raise
        redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
        coordinator = create_coordinator(
            redis_url, lambda redis: metrics.coordination_backend.set(int(redis))
        )
        metrics.coordination_backend.set(1 if redis_url else 0)
        if isinstance(coordinator, RedisCoordinator) and not await coordinator.ping():
            log.error("redis_unreachable_at_start_using_in_process_coordination")
        diagnoses = DiagnosisService(ProbeRunner(targets), coordinator, pool)
        slack = create_web_client(
            settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None,
            str(settings.slack_api_url) if settings.slack_api_url else None,
            metrics,
            settings.slack_timeout_seconds,
        )

        async def tell_about_failure(exc: BaseException) -> None:
            await tell_requester(slack, notice_for(exc))

        tasks = TaskTracker(on_change=metrics.tasks_in_flight.set, on_failure=tell_about_failure)
        executor = ActionExecutor(targets)
        incident_store = IncidentStore(pool)
        directory = Directory(slack)

        async def restarts_frozen(channel_id: str) -> bool:
            incident = await incident_store.in_channel(channel_id)
            return bool(incident and incident.security_sensitive and incident.status != "resolved")

        async def incident_timeline(channel_id: str, kind: str, text: str, actor: str, key: str) -> None:
            incident = await incident_store.in_channel(channel_id)
            if incident is not None:
                await incident_store.add_event(incident.id, kind=kind, text=text, actor=actor, source_key=key)

        approvals = ApprovalService(
            pool=pool,
            catalogue=runbooks,
            policy=policy,
            runner=diagnoses.runner,
            executor=executor,
            coordinator=coordinator,
            is_member=directory.includes,
            restarts_frozen=restarts_frozen,
            on_event=incident_timeline,
        )
        jobs = JobQueue(dsn)

        async def sweep_expired_approvals(tick: datetime) -> None:
            await expire_due(approvals, slack)
            await recover_stranded(approvals, slack)

        jobs.periodic("approvals.expire", settings.approval_sweep_cron, sweep_expired_approvals)

        async def scheduled_runbooks(tick: datetime) -> None:
            await run_due(tick, runbooks, diagnoses, slack)

        jobs.periodic("runbooks.schedules", settings.schedule_tick_cron, scheduled_runbooks)
        routing_key = settings.pagerduty_routing_key
        outbox = Outbox(slack, jobs)
        incidents = IncidentService(
            incident_store,
            slack,
            settings.incident_channel,
            jobs=jobs,
            outbox=outbox,
            directory=directory,
            pager=Pager(str(settings.pagerduty_url), routing_key.get_secret_value() if routing_key else None),
            tiers=parse_tiers(settings.escalation),
            severities=severities,
            timer_scale=settings.timer_scale,
        )
        await jobs.start()
        return cls(
            settings,
            pool,
            coordinator,
            metrics,
            tasks,
            runbooks,
            targets,
            diagnoses,
            slack,
            executor,
            approvals,
            jobs,
            incidents,
            ReviewService(
                pool,
                incident_store,
                slack,
                template,
                secrets=set(redactor.known),
                action_reaction=settings.action_item_reaction,
                root_cause_reaction=settings.root_cause_reaction,
            ),
            outbox,
            embedded,
            dsn,
        )

    async def ready(self) -> tuple[bool, dict[str, Any]]:
        """Store reachable and schema current (what `/ready` reports)."""
        checks: dict[str, Any] = {}
        try:
            async with self.pool.connection(timeout=2.0) as conn:
                outstanding = await migrations.pending(conn)
            checks["database"] = "ok"
            checks["migrations"] = "current" if not outstanding else f"{len(outstanding)} pending"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        checks["jobs"] = "running" if self.jobs.worker_running else "stopped"
        checks["coordination"] = self.coordinator.backend
        if isinstance(self.coordinator, RedisCoordinator) and self.coordinator.degraded:
            checks["coordination"] = "redis unreachable, in-process fallback"
        ok = checks.get("database") == "ok" and checks.get("migrations") == "current"
        return ok, checks

    async def close(self, drain_timeout: float = 10.0) -> None:
        await self.tasks.drain(drain_timeout)
        await self.jobs.stop()
        await self.diagnoses.runner.close()
        await self.executor.close()
        await self.coordinator.close()
        await self.slack.close()
        await self.pool.close()
        if self.embedded is not None:
            await self.embedded.stop()


def load_runbooks_and_targets(settings: Settings) -> tuple[Catalogue, Targets]:
    """The runbook catalogue and the targets registry, or one readable line on what is wrong."""
    try:
        runbooks = load_catalogue(settings.runbooks_dir)
    except CatalogueError as exc:
        more = (
            f" (and {len(exc.problems) - 1} more; run `opsbot runbooks check`)"
            if len(exc.problems) > 1
            else ""
        )
        raise ConfigError(f"OPSBOT_RUNBOOKS: {exc.problems[0]}{more}") from None
    try:
        runbooks = apply_param_defaults(runbooks, parse_overrides(settings.param_defaults))
    except CatalogueError as exc:
        raise ConfigError(f"OPSBOT_PARAM_DEFAULTS: {'; '.join(exc.problems)}") from None
    if settings.targets_file is None:
        return runbooks, Targets({}, source="(no OPSBOT_TARGETS)")
    try:
        return runbooks, load_targets(settings.targets_file)
    except TargetsError as exc:
        raise ConfigError(f"OPSBOT_TARGETS: {exc}") from None


async def _migrate(dsn: str) -> None:
    try:
        conn = await psycopg.AsyncConnection.connect(
            dsn, connect_timeout=10, application_name="opsbot:migrate"
        )
    except psycopg.OperationalError as exc:
        raise ConfigError(f"DATABASE_URL: cannot connect ({_first_line(exc)})") from None
    async with conn:
        applied = await migrations.migrate(conn)
    for migration in applied:
        log.info("migration_applied", version=migration.version, name=migration.name)


async def run_migrations(settings: Settings) -> list[migrations.Migration]:
    """`opsbot migrate`: apply pending migrations and report what was applied."""
    embedded = EmbeddedPostgres(settings.data_dir) if settings.database_url is None else None
    dsn = await embedded.start() if embedded else settings.database_url.get_secret_value()  # type: ignore[union-attr]
    try:
        async with await psycopg.AsyncConnection.connect(dsn, connect_timeout=10) as conn:
            return await migrations.migrate(conn)
    except psycopg.OperationalError as exc:
        raise ConfigError(f"DATABASE_URL: cannot connect ({_first_line(exc)})") from None
    finally:
        if embedded:
            await embedded.stop()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact_text(text[0]) if text else type(exc).__name__


def _remember_secrets(settings: Settings) -> None:
    """Teach the log redactor the secret values so they are masked wherever they appear."""
    for secret in (settings.slack_bot_token, settings.slack_signing_secret, settings.slack_app_token):
        if secret is not None:
            redactor.known.add(secret.get_secret_value())

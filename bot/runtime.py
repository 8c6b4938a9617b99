"""The composition root: one running bot's configuration, store, clients and services, and their lifecycle.

`Runtime.start` reads every configuration file first (nothing is open yet, so a bad file leaks
nothing), then opens resources one at a time — embedded PostgreSQL if there is no DATABASE_URL,
migrations, the pool, the Slack client, coordination (Redis or in-process), probes and actions,
the job queue — registering how to close each on an `AsyncExitStack` before it opens. If any step
fails, what was already opened is closed in reverse order and the error propagates; `close` unwinds
the same stack, tracked background tasks first. Services get their collaborators as constructor
arguments; handlers get the runtime passed in when they are registered — no module-level state.

A new service: a field on `Runtime`, built in `_assemble`; if it holds something to close,
open it in one of the `_open_*` steps and register the close there.
"""

from __future__ import annotations

import functools
import hashlib
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import jinja2
import psycopg
from psycopg_pool import AsyncConnectionPool

from bot.access.facts import Facts
from bot.access.gate import AccessGate
from bot.actions import ActionExecutor
from bot.alerts.routes import AlertRoutes, load_routes
from bot.alerts.silences import Silences
from bot.alerts.store import AlertStore
from bot.approvals.policy import Policy, load_policy
from bot.config import ConfigError, Settings
from bot.coordination import MemoryCoordinator, RedisCoordinator, create_coordinator
from bot.incidents.severity import Severity, load_severities
from bot.incidents.store import IncidentStore
from bot.jobs import JobQueue
from bot.logs import Redactor, get_logger, redact_logs, redact_text
from bot.metrics import Metrics
from bot.paging import Pager
from bot.postmortem.render import load_template
from bot.probes import ProbeRunner
from bot.redaction import ContentRedactor, redact_diagnosis
from bot.runbooks.catalogue import Catalogue, CatalogueError, load_catalogue
from bot.runbooks.defaults import apply_param_defaults, parse_overrides
from bot.services.alerts import AlertService
from bot.services.approval_desk import ApprovalDesk
from bot.services.approvals import ApprovalService
from bot.services.audit_trail import AuditTrail
from bot.services.container import Services
from bot.services.diagnoses import DiagnosisService
from bot.services.incidents import IncidentService, parse_tiers
from bot.services.reviews import ReviewService
from bot.services.schedules import run_due
from bot.services.timeline import TimelineService
from bot.slack.asker import report_failure
from bot.slack.buckets import MemoryBuckets, RedisBuckets
from bot.slack.budgets import budgets_for
from bot.slack.client import DEFAULT_API_URL, InstrumentedWebClient, create_web_client
from bot.slack.directory import Directory
from bot.slack.outbox import Outbox
from bot.slack.scheduler import OutboundScheduler
from bot.store import migrations
from bot.store.embedded import EmbeddedPostgres
from bot.store.pool import create_pool
from bot.targets import Targets, load_targets
from bot.tasks import TaskTracker

log = get_logger(__name__)


@dataclass(frozen=True)
class BotConfig:
    """What the configuration files and settings say, read and validated before anything opens."""

    runbooks: Catalogue
    targets: Targets
    policy: Policy
    severities: dict[str, Severity]
    review_template: jinja2.Template
    # Where alert notifications go (OPSBOT_ALERT_ROUTES, checked against the catalogue).
    alert_routes: AlertRoutes
    # This bot's secrets (Slack tokens, target credentials), masked in its logs and reviews.
    redactor: Redactor


@dataclass(frozen=True)
class _Store:
    dsn: str
    pool: AsyncConnectionPool
    embedded: EmbeddedPostgres | None


@dataclass(frozen=True)
class _Clients:
    slack: InstrumentedWebClient
    coordinator: MemoryCoordinator | RedisCoordinator
    executor: ActionExecutor
    runner: ProbeRunner


@dataclass(kw_only=True)
class Runtime:
    settings: Settings
    metrics: Metrics
    runbooks: Catalogue
    targets: Targets
    redactor: Redactor
    dsn: str = field(repr=False)
    embedded: EmbeddedPostgres | None
    pool: AsyncConnectionPool
    slack: InstrumentedWebClient
    coordinator: MemoryCoordinator | RedisCoordinator
    executor: ActionExecutor
    tasks: TaskTracker
    diagnoses: DiagnosisService
    approvals: ApprovalService
    jobs: JobQueue
    outbox: Outbox
    incidents: IncidentService
    reviews: ReviewService
    # What the front doors (Slack listeners, schedules) call: one method per use case.
    services: Services
    # How to close everything `start` opened, most recent first; `close` unwinds it.
    _resources: AsyncExitStack = field(default_factory=AsyncExitStack, init=False, repr=False)
    _drain_timeout: float = field(default=10.0, init=False, repr=False)

    @classmethod
    async def start(cls, settings: Settings, *, metrics: Metrics | None = None) -> Runtime:
        """Open everything in order; if a step fails, close what was opened and re-raise."""
        metrics = metrics or Metrics()
        config = load_config(settings)
        async with AsyncExitStack() as resources:
            resources.callback(redact_logs(config.redactor))
            store = await _open_store(resources, settings)
            clients = await _open_clients(resources, settings, config.targets, metrics)
            runtime = _assemble(settings, metrics, config, store, clients)
            _schedule(runtime)
            resources.push_async_callback(runtime.jobs.stop)
            await runtime.jobs.start()
            resources.push_async_callback(runtime._drain_tasks)
            resources.push_async_callback(runtime.services.alerts.cards.close)
            # Cards a replica left behind (it died between a change and its drawing) are drawn now.
            runtime.tasks.spawn(runtime.services.alerts.cards.sweep(), name="alerts.cards.sweep")
            runtime._resources = resources.pop_all()
        return runtime

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
        """Let tracked tasks finish (up to `drain_timeout` s), then close everything, newest first."""
        self._drain_timeout = drain_timeout
        await self._resources.aclose()

    async def _drain_tasks(self) -> None:
        await self.tasks.drain(self._drain_timeout)


# --- reading the configuration (nothing is open yet) ------------------------------------------


def load_config(settings: Settings) -> BotConfig:
    """Every configuration file the bot reads, validated; a `ConfigError` names what is wrong."""
    runbooks, targets = load_runbooks_and_targets(settings)
    try:
        template = load_template(settings.review_template)
    except (OSError, jinja2.TemplateError) as exc:
        raise ConfigError(f"OPSBOT_REVIEW_TEMPLATE: {exc}") from None
    return BotConfig(
        runbooks=runbooks,
        targets=targets,
        policy=load_policy(settings.policy_file),
        severities=load_severities(settings.severities_file),
        review_template=template,
        alert_routes=load_routes(settings.alert_routes_file, runbooks),
        redactor=Redactor(_slack_secrets(settings) | targets.secrets()),
    )


def load_runbooks_and_targets(settings: Settings) -> tuple[Catalogue, Targets]:
    """The runbook catalogue (with OPSBOT_PARAM_DEFAULTS applied) and the targets registry."""
    runbooks = load_catalogue(settings.runbooks_dir)
    try:
        runbooks = apply_param_defaults(runbooks, parse_overrides(settings.param_defaults))
    except CatalogueError as exc:
        raise ConfigError(f"OPSBOT_PARAM_DEFAULTS: {'; '.join(exc.problems)}") from None
    if settings.targets_file is None:
        return runbooks, Targets({}, source="(no OPSBOT_TARGETS)")
    return runbooks, load_targets(settings.targets_file)


def _slack_secrets(settings: Settings) -> set[str]:
    tokens = (settings.slack_bot_token, settings.slack_signing_secret, settings.slack_app_token)
    return {token.get_secret_value() for token in tokens if token is not None}


# --- opening resources: each close is registered before the resource opens ------------------


async def _open_store(resources: AsyncExitStack, settings: Settings) -> _Store:
    """The database (embedded when there is no DATABASE_URL), migrated, and the bot's pool."""
    embedded: EmbeddedPostgres | None = None
    if settings.database_url is None:
        embedded = EmbeddedPostgres(settings.data_dir)
        resources.push_async_callback(embedded.stop)
        dsn = await embedded.start()
        log.info("embedded_postgres_started", data_dir=str(embedded.pgdata))
    else:
        dsn = settings.database_url.get_secret_value()
    await _migrate(dsn)
    pool = create_pool(dsn)
    resources.push_async_callback(pool.close)
    await pool.open(wait=True, timeout=10)
    return _Store(dsn=dsn, pool=pool, embedded=embedded)


async def _open_clients(
    resources: AsyncExitStack, settings: Settings, targets: Targets, metrics: Metrics
) -> _Clients:
    """Slack's Web API client, coordination (Redis or in-process), actions and probes."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    api_url = str(settings.slack_api_url) if settings.slack_api_url else None
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    scheduler = _outbound(redis_url, api_url, token, metrics, settings.slack_budget_scale)
    slack = create_web_client(token, api_url, metrics, settings.slack_timeout_seconds, scheduler)
    resources.push_async_callback(slack.close)
    coordinator = create_coordinator(redis_url, lambda redis: metrics.coordination_backend.set(int(redis)))
    resources.push_async_callback(coordinator.close)
    metrics.coordination_backend.set(1 if redis_url else 0)
    if isinstance(coordinator, RedisCoordinator) and not await coordinator.ping():
        log.error("redis_unreachable_at_start_using_in_process_coordination")
    executor = ActionExecutor(targets)
    resources.push_async_callback(executor.close)
    runner = ProbeRunner(targets)
    resources.push_async_callback(runner.close)
    return _Clients(slack=slack, coordinator=coordinator, executor=executor, runner=runner)


def _outbound(
    redis_url: str | None, api_url: str | None, token: str | None, metrics: Metrics, scale: float
) -> OutboundScheduler:
    """The Slack budgets: in Redis, shared by every replica of this app in this workspace (its
    token and API address name the budget, never the token itself), or this process's own."""
    budgets = functools.partial(budgets_for, scale=scale)
    if redis_url is None:
        return OutboundScheduler(MemoryBuckets(), metrics, budgets)
    workspace = hashlib.sha256(f"{api_url or DEFAULT_API_URL}|{token or ''}".encode()).hexdigest()[:16]
    return OutboundScheduler(RedisBuckets(redis_url, workspace), metrics, budgets)


# --- building the services (construction only; nothing here opens a connection) -------------


def _assemble(
    settings: Settings, metrics: Metrics, config: BotConfig, store: _Store, clients: _Clients
) -> Runtime:
    slack, pool = clients.slack, store.pool
    incident_store = IncidentStore(pool)
    directory = Directory(slack)
    access = _access_gate(config, pool, slack, directory, incident_store)
    jobs = JobQueue(store.dsn)
    diagnoses = _diagnoses(config, pool, clients, access, jobs)
    outbox = Outbox(slack, jobs)
    tasks = _tasks(metrics, slack)
    approvals = _approvals(config, store, clients, diagnoses, incident_store, directory)
    incidents = _incidents(
        settings, config, slack, incident_store, directory, jobs, outbox, diagnoses, approvals
    )
    reviews = _reviews(settings, config, pool, incident_store, slack)
    services = Services(
        catalogue=config.runbooks,
        diagnoses=diagnoses,
        approvals=_approval_desk(approvals, slack, outbox, directory, incident_store),
        incidents=incidents,
        timeline=TimelineService(incident_store, slack),
        reviews=reviews,
        tasks=tasks,
        client=slack,
        audit=_audit_trail(settings, config, pool, slack, directory, incident_store),
        access=access,
        alerts=_alerts(settings, config, metrics, pool, slack, diagnoses, incidents),
    )
    return Runtime(
        settings=settings,
        metrics=metrics,
        runbooks=config.runbooks,
        targets=config.targets,
        redactor=config.redactor,
        dsn=store.dsn,
        embedded=store.embedded,
        pool=pool,
        slack=slack,
        coordinator=clients.coordinator,
        executor=clients.executor,
        tasks=tasks,
        diagnoses=diagnoses,
        approvals=approvals,
        jobs=jobs,
        outbox=outbox,
        incidents=incidents,
        reviews=reviews,
        services=services,
    )


def _alerts(
    settings: Settings,
    config: BotConfig,
    metrics: Metrics,
    pool: AsyncConnectionPool,
    slack: InstrumentedWebClient,
    diagnoses: DiagnosisService,
    incidents: IncidentService,
) -> AlertService:
    url = settings.alertmanager_url
    return AlertService(
        AlertStore(pool),
        config.alert_routes,
        config.runbooks,
        slack,
        diagnoses,
        incidents,
        metrics,
        silences=Silences(str(url)) if url is not None else None,
        settle_seconds=settings.alert_settle_seconds,
    )


def _approval_desk(
    approvals: ApprovalService,
    slack: InstrumentedWebClient,
    outbox: Outbox,
    directory: Directory,
    incident_store: IncidentStore,
) -> ApprovalDesk:
    async def is_incident_channel(channel_id: str) -> bool:
        return await incident_store.in_channel(channel_id) is not None

    return ApprovalDesk(
        approvals, slack, outbox, directory=directory, is_incident_channel=is_incident_channel
    )


def _diagnoses(
    config: BotConfig, pool: AsyncConnectionPool, clients: _Clients, access: AccessGate, jobs: JobQueue
) -> DiagnosisService:
    runner, coordinator, slack = clients.runner, clients.coordinator, clients.slack
    return DiagnosisService(
        runner, coordinator, pool, catalogue=config.runbooks, client=slack, gate=access, jobs=jobs
    )


def _access_gate(
    config: BotConfig,
    pool: AsyncConnectionPool,
    slack: InstrumentedWebClient,
    directory: Directory,
    incident_store: IncidentStore,
) -> AccessGate:
    async def is_incident_channel(channel_id: str) -> bool:
        return await incident_store.in_channel(channel_id) is not None

    return AccessGate(
        Facts(slack),
        config.policy.reading,
        pool,
        includes=directory.includes,
        is_incident_channel=is_incident_channel,
        redact=partial(redact_diagnosis, redactor=ContentRedactor(config.policy.redaction)),
    )


def _audit_trail(
    settings: Settings,
    config: BotConfig,
    pool: AsyncConnectionPool,
    slack: InstrumentedWebClient,
    directory: Directory,
    incident_store: IncidentStore,
) -> AuditTrail:
    async def incident_channel(incident_id: str) -> str | None:
        incident = await incident_store.get(incident_id)
        return incident.channel_id if incident else None

    return AuditTrail(
        pool,
        slack,
        directory,
        config.redactor,
        auditors_group=settings.auditors_group,
        incident_channel=incident_channel,
    )


def _tasks(metrics: Metrics, slack: InstrumentedWebClient) -> TaskTracker:
    """Background work listeners start; when it fails, the person who asked is told."""

    async def tell_about_failure(exc: BaseException) -> None:
        await report_failure(slack, exc)

    return TaskTracker(on_change=metrics.tasks_in_flight.set, on_failure=tell_about_failure)


def _reviews(
    settings: Settings,
    config: BotConfig,
    pool: AsyncConnectionPool,
    incident_store: IncidentStore,
    slack: InstrumentedWebClient,
) -> ReviewService:
    return ReviewService(
        pool,
        incident_store,
        slack,
        config.review_template,
        secrets=set(config.redactor.secrets),
        action_reaction=settings.action_item_reaction,
        root_cause_reaction=settings.root_cause_reaction,
        catalogue=config.runbooks,
    )


def _approvals(
    config: BotConfig,
    store: _Store,
    clients: _Clients,
    diagnoses: DiagnosisService,
    incident_store: IncidentStore,
    directory: Directory,
) -> ApprovalService:
    async def restarts_frozen(channel_id: str) -> bool:
        incident = await incident_store.in_channel(channel_id)
        return bool(incident and incident.security_sensitive and incident.status != "resolved")

    async def incident_timeline(channel_id: str, kind: str, text: str, actor: str, key: str) -> None:
        incident = await incident_store.in_channel(channel_id)
        if incident is not None:
            await incident_store.add_event(incident.id, kind=kind, text=text, actor=actor, source_key=key)

    return ApprovalService(
        pool=store.pool,
        catalogue=config.runbooks,
        policy=config.policy,
        runner=diagnoses.runner,
        executor=clients.executor,
        coordinator=clients.coordinator,
        is_member=directory.includes,
        restarts_frozen=restarts_frozen,
        on_event=incident_timeline,
    )


def _incidents(
    settings: Settings,
    config: BotConfig,
    slack: InstrumentedWebClient,
    incident_store: IncidentStore,
    directory: Directory,
    jobs: JobQueue,
    outbox: Outbox,
    diagnoses: DiagnosisService,
    approvals: ApprovalService,
) -> IncidentService:
    routing_key = settings.pagerduty_routing_key

    async def open_approvals(channel: str) -> int:
        return len(await approvals.store.pending_in(channel))

    return IncidentService(
        incident_store,
        slack,
        settings.incident_channel,
        jobs=jobs,
        outbox=outbox,
        directory=directory,
        pager=Pager(str(settings.pagerduty_url), routing_key.get_secret_value() if routing_key else None),
        tiers=parse_tiers(settings.escalation),
        severities=config.severities,
        diagnoses=diagnoses,
        open_approvals=open_approvals,
        timer_scale=settings.timer_scale,
        root_cause_reaction=settings.root_cause_reaction,
    )


def _schedule(runtime: Runtime) -> None:
    """The periodic jobs, registered before the queue starts: approval expiry, scheduled runbooks and
    alert cards left behind."""
    settings, desk = runtime.settings, runtime.services.approvals

    async def sweep_expired_approvals(tick: datetime) -> None:
        await desk.expire_due()
        await desk.recover_stranded()

    async def scheduled_runbooks(tick: datetime) -> None:
        await run_due(tick, runtime.runbooks, runtime.diagnoses)

    runtime.jobs.periodic("approvals.expire", settings.approval_sweep_cron, sweep_expired_approvals)
    runtime.jobs.periodic("runbooks.schedules", settings.schedule_tick_cron, scheduled_runbooks)

    async def alert_cards_behind(tick: datetime) -> None:
        await runtime.services.alerts.cards.sweep()

    runtime.jobs.periodic("alerts.cards", "* * * * *", alert_cards_behind)


# --- migrations -------------------------------------------------------------------------------


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
    async with AsyncExitStack() as resources:
        if settings.database_url is None:
            embedded = EmbeddedPostgres(settings.data_dir)
            resources.push_async_callback(embedded.stop)
            dsn = await embedded.start()
        else:
            dsn = settings.database_url.get_secret_value()
        try:
            async with await psycopg.AsyncConnection.connect(dsn, connect_timeout=10) as conn:
                return await migrations.migrate(conn)
        except psycopg.OperationalError as exc:
            raise ConfigError(f"DATABASE_URL: cannot connect ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact_text(text[0]) if text else type(exc).__name__

"""`opsbot demo`: the whole product on one machine — localslack in the browser, the bot, a sick system.

Start order: embedded PostgreSQL (a fresh bot database and a fresh app database each run, so
ids from an earlier demo never meet this run's channels), a private Redis, the sick system and
its targets file, localslack with the web client, the bot over signed HTTP, then the guided
first message. Stop order is the reverse; every piece is stopped on Ctrl-C.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient

from bot.config import load_settings
from bot.demo.alerting import DemoAlerts
from bot.demo.redis_server import redis_server
from bot.demo.system import SickSystem, path_prepended
from bot.server import BotServer
from bot.store.embedded import EmbeddedPostgres
from localslack import LocalSlack
from localslack.config import ChannelSeed, SlashCommandSeed, TeamSeed, UserSeed, WorkspaceSeed

INCIDENT_CHANNEL = "incident-response"
# Alert cards other than the story's connection leak (deploy/alert-routes.example.yml, adapted).
ALERTS_CHANNEL = "alerts"
PARTNER_CHANNEL = "partner-acme"
PARTNER_TEAM = "T0PARTNER"
LEAKED_CONNECTIONS = 60
# The demo's leaked connections are seconds old, not the seed's 30 minutes, so the demo counts
# every idle connection as stuck; a real deployment keeps the runbook's default.
DEMO_PARAM_DEFAULTS = "db.connections.idle_minutes=0"

GUIDE = (
    "*Checkout is down and it is your pager.* You are *alice*, the on-call engineer "
    "(switch people top right).\n"
    "1. Type `/incident declare p0 checkout is down` below. opsbot opens an incident channel, "
    "posts the incident card and runs the P0 diagnosis there.\n"
    "2. The diagnosis is critical: the app database is flooded with connections. "
    "Press *▶ Run db.connections*, open the thread it answers in and press *Terminate idle "
    "connections older than the limit*; give a reason.\n"
    "3. Killing connections is risky, so someone else must approve: switch to *bob* and press "
    "*Approve* on the card. opsbot runs it and shows before and after.\n"
    "4. Back as alice: `/incident resolve terminated the leaked connections`, confirm the root "
    "cause in the form, then press *Draft review* for the post-incident review draft.\n"
    "`/opsbot help` lists everything else.\n"
    "Also try being someone opsbot must refuse: *gina*, a single-channel guest here, and *eve* "
    "from Partner Co in #partner-acme, a Slack Connect channel shared with their org.\n"
    "A few seconds after start an alert card, *DatabaseConnectionLeak*, lands here by itself with "
    "its diagnosis in the thread: alerts come in before anyone types."
)


@dataclass
class DemoWorkspace:
    """Handles to the running demo; build it with `DemoWorkspace.running(...)`."""

    slack: LocalSlack
    bot: BotServer
    system: SickSystem
    alerts: DemoAlerts

    @property
    def url(self) -> str:
        return f"{self.slack.url}/?as=alice#channel={INCIDENT_CHANNEL}"

    @classmethod
    @asynccontextmanager
    async def running(
        cls, data_dir: Path, *, port: int = 0, log_level: str = "warning"
    ) -> AsyncIterator[DemoWorkspace]:
        workdir = (data_dir / "demo").resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        async with AsyncExitStack() as stack:
            embedded = EmbeddedPostgres(data_dir)
            await embedded.start()
            stack.push_async_callback(embedded.stop)
            bot_dsn = await embedded.fresh_database("opsbot_demo")
            app_dsn = await embedded.fresh_database("demo_app")
            redis_url = await stack.enter_async_context(redis_server(workdir / "redis"))
            system = await stack.enter_async_context(
                SickSystem.running(postgres_dsn=app_dsn, redis_url=redis_url, workdir=workdir)
            )
            await _make_sick(system)
            # The command target resolves its stand-in programs on PATH while the demo runs; the
            # previous PATH comes back at exit (tests run the demo inside their own process).
            stack.enter_context(path_prepended(system.host.bin_dir))
            slack = await stack.enter_async_context(LocalSlack.running(demo_seed(), port=port))
            alerts = DemoAlerts(workdir, story_channel=INCIDENT_CHANNEL, alerts_channel=ALERTS_CHANNEL)
            bot = BotServer(
                load_settings(
                    SLACK_BOT_TOKEN=slack.bot_token,
                    SLACK_SIGNING_SECRET=slack.signing_secret,
                    SLACK_API_URL=slack.api_url,
                    SLACK_APP_TOKEN="",
                    DATABASE_URL=bot_dsn,
                    REDIS_URL="",
                    OPSBOT_PORT=0,
                    OPSBOT_DATA_DIR=str(data_dir),
                    OPSBOT_TARGETS=str(system.targets_file),
                    OPSBOT_PARAM_DEFAULTS=DEMO_PARAM_DEFAULTS,
                    OPSBOT_INCIDENT_CHANNEL=INCIDENT_CHANNEL,
                    OPSBOT_LOG_LEVEL=log_level,
                    **alerts.bot_settings(),
                )
            )
            await bot.start()
            stack.push_async_callback(bot.stop)
            slack.request_url = f"{bot.url}/slack/events"
            await post_guide(slack)
            # Prometheus and Alertmanager start in the background: the demo does not wait for them.
            await stack.enter_async_context(
                alerts.delivering(bot_url=bot.url, metrics_url=system.urls["api"])
            )
            yield cls(slack=slack, bot=bot, system=system, alerts=alerts)


async def _make_sick(system: SickSystem) -> None:
    """The incident the guide walks through: a connection leak, plus the symptoms around it."""
    await system.leak_connections(LEAKED_CONNECTIONS)
    await system.start_slow_query(seconds=3600)
    await system.lower_hit_rate()
    system.make_sick()


def demo_seed() -> WorkspaceSeed:
    """The default workspace, subscribed to the bot's events and listing its slash commands."""
    from bot.manifest import build_manifest
    from bot.runbooks.catalogue import load_catalogue
    from handlers import subscribed_events

    manifest = build_manifest(load_catalogue(load_settings().runbooks_dir), socket_mode=True)
    commands = [
        SlashCommandSeed(
            command=c["command"], description=c.get("description", ""), usage_hint=c.get("usage_hint", "")
        )
        for c in manifest["features"]["slash_commands"]
    ]
    seed = _with_guest_and_partner(WorkspaceSeed())
    seed = seed.extended(
        channels=[
            ChannelSeed(
                id="C0ALERTS",
                name=ALERTS_CHANNEL,
                topic="Alert cards",
                members=["alice", "bob", "carol", "dave", "bot"],
            )
        ]
    )
    app = seed.app.model_copy(update={"bot_events": subscribed_events(), "commands": commands})
    return seed.model_copy(update={"app": app})


def _with_guest_and_partner(seed: WorkspaceSeed) -> WorkspaceSeed:
    """People opsbot must refuse, so the demo can show it: a single-channel guest in the incident
    channel, and a Partner Co user in a Slack Connect channel shared with their org."""
    return seed.extended(
        external_teams=[TeamSeed(id=PARTNER_TEAM, name="Partner Co", domain="partner-co")],
        users=[
            UserSeed(
                id="U0GINA",
                name="gina",
                real_name="Gina Garcia",
                display_name="gina",
                title="Contractor · single-channel guest",
                email="gina@contractor.example",
                is_restricted=True,
                is_ultra_restricted=True,
            ),
            UserSeed(
                id="U0EVE",
                name="eve",
                real_name="Eve Evans",
                display_name="eve",
                title="Partner Co · external (Slack Connect)",
                email="eve@partner-co.example",
                team_id=PARTNER_TEAM,
            ),
        ],
        channels=[
            ChannelSeed(
                id="C0PARTNER",
                name=PARTNER_CHANNEL,
                topic="Shared with Partner Co",
                members=["alice", "eve", "bot"],
                is_ext_shared=True,
                connected_team_ids=[PARTNER_TEAM],
            )
        ],
        add_members={INCIDENT_CHANNEL: ["gina"]},
    )


async def post_guide(slack: LocalSlack) -> None:
    """The first message in #incident-response, posted by the bot through the Web API like any other."""
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    channel = slack.state.channel(INCIDENT_CHANNEL)
    await client.chat_postMessage(
        channel=channel.id,
        text="Welcome to the opsbot demo: type /incident declare p0 checkout is down",
        blocks=[
            {"type": "header", "text": {"type": "plain_text", "text": "🚨 Checkout is down — try opsbot"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": GUIDE}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "Everything here runs on this machine: localslack, the bot, a sick "
                        "PostgreSQL, Redis and HTTP service. Ctrl-C in the terminal stops it all.",
                    }
                ],
            },
        ],
    )

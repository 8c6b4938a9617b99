"""`opsbot postmortem <incident>` from a terminal: the same draft, without a running bot."""

from __future__ import annotations

from bot.config import ConfigError, Settings
from bot.incidents.store import IncidentStore
from bot.metrics import Metrics
from bot.postmortem.render import load_template
from bot.services.reviews import ReviewError, ReviewService
from bot.slack.client import create_web_client
from bot.store.embedded import EmbeddedPostgres
from bot.store.pool import create_pool


async def draft_review(settings: Settings, incident_id: str) -> str:
    embedded = EmbeddedPostgres(settings.data_dir) if settings.database_url is None else None
    dsn = await embedded.start() if embedded else settings.database_url.get_secret_value()  # type: ignore[union-attr]
    pool = create_pool(dsn, min_size=0, max_size=2, name="opsbot:postmortem")
    client = (
        create_web_client(
            settings.slack_bot_token.get_secret_value(),
            str(settings.slack_api_url) if settings.slack_api_url else None,
            Metrics(),
        )
        if settings.slack_bot_token
        else None
    )
    try:
        await pool.open(wait=True, timeout=10)
        service = ReviewService(
            pool,
            IncidentStore(pool),
            client,
            load_template(settings.review_template),
            secrets=set(),
            action_reaction=settings.action_item_reaction,
            root_cause_reaction=settings.root_cause_reaction,
        )
        try:
            _, markdown, _ = await service.generate(incident_id, "cli")
        except ReviewError as exc:
            raise ConfigError(f"postmortem: {exc}") from None
        return markdown
    finally:
        if client is not None:
            await client.close()
        await pool.close()
        if embedded is not None:
            await embedded.stop()


def _known_secrets(settings: Settings) -> set[str]:
    values = (settings.slack_bot_token, settings.slack_signing_secret, settings.slack_app_token)
    return {value.get_secret_value() for value in values if value is not None}

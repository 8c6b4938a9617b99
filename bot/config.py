"""Runtime settings read from the environment, validated once at start-up.

A bad setting must stop the process with one line that names the variable, so
`load_settings` turns pydantic's error report into a `ConfigError` with that line.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AnyUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_runbooks_dir() -> Path:
    """The catalogue shipped beside the code (a source checkout), else the image's copy."""
    beside_code = Path(__file__).resolve().parents[1] / "runbooks"
    return beside_code if beside_code.is_dir() else Path("/opt/opsbot/runbooks")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable, one line per problem
    (a configuration file can have several: see `bot.yaml_config`)."""


def _validate_scheme(value: SecretStr | None, schemes: tuple[str, ...]) -> SecretStr | None:
    if value is None or not value.get_secret_value():
        return None
    raw = value.get_secret_value()
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme not in schemes or not rest:
        raise ValueError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
    return value


class Settings(BaseSettings):
    """Every knob opsbot reads from the environment (or a `.env` file)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: AnyUrl | None = Field(None, validation_alias="SLACK_API_URL")
    database_url: SecretStr | None = Field(None, validation_alias="DATABASE_URL")
    redis_url: SecretStr | None = Field(None, validation_alias="REDIS_URL")
    targets_file: Path | None = Field(None, validation_alias="OPSBOT_TARGETS")
    runbooks_dir: Path = Field(default_factory=default_runbooks_dir, validation_alias="OPSBOT_RUNBOOKS")
    policy_file: Path | None = Field(None, validation_alias="OPSBOT_POLICY")
    pagerduty_routing_key: SecretStr | None = Field(None, validation_alias="OPSBOT_PAGERDUTY_ROUTING_KEY")
    pagerduty_url: AnyUrl = Field(
        AnyUrl("https://events.pagerduty.com/v2/enqueue"), validation_alias="OPSBOT_PAGERDUTY_URL"
    )
    # Escalation tiers as minutes=user-group-handle (seed 000: Tier 1 0-15 min, Tier 2 15-30, Tier 3 30+).
    escalation: str = Field(
        "0=oncall,15=approvers,30=managers",
        pattern=r"^\d{1,4}=[a-z0-9._-]{1,80}(,\d{1,4}=[a-z0-9._-]{1,80})*$",
        validation_alias="OPSBOT_ESCALATION",
    )
    severities_file: Path | None = Field(None, validation_alias="OPSBOT_SEVERITIES")
    # Site defaults laid over the catalogue, e.g. "db.connections.idle_minutes=5" (comma-separated).
    param_defaults: str = Field("", max_length=4000, validation_alias="OPSBOT_PARAM_DEFAULTS")
    review_template: Path | None = Field(None, validation_alias="OPSBOT_REVIEW_TEMPLATE")
    action_item_reaction: str = Field(
        "memo", pattern=r"^[a-z0-9_+-]{1,60}$", validation_alias="OPSBOT_ACTION_REACTION"
    )
    root_cause_reaction: str = Field(
        "dart", pattern=r"^[a-z0-9_+-]{1,60}$", validation_alias="OPSBOT_ROOT_CAUSE_REACTION"
    )
    # Multiplies every incident timer (reminders, escalations); tests and demos shorten time with it.
    timer_scale: float = Field(1.0, gt=0, le=10, validation_alias="OPSBOT_TIMER_SCALE")
    # How often scheduled runbooks are checked for being due (6 fields = seconds, for tests).
    schedule_tick_cron: str = Field("* * * * *", validation_alias="OPSBOT_SCHEDULE_TICK_CRON")
    # How often expired approval requests are marked and their cards redrawn (6 fields = seconds).
    approval_sweep_cron: str = Field("* * * * *", validation_alias="OPSBOT_APPROVAL_SWEEP_CRON")
    incident_channel: str = Field("incident-response", validation_alias="OPSBOT_INCIDENT_CHANNEL")
    # The user group whose members may read the audit log in Slack (`/opsbot audit`), asked each time.
    auditors_group: str = Field(
        "auditors",
        pattern=r"^([S][A-Z0-9]{2,20}|[a-z0-9][a-z0-9._-]{0,79})$",
        validation_alias="OPSBOT_AUDITORS_GROUP",
    )
    # Alerts in: where notifications go (routes YAML) and each source's bearer token; a source
    # without a token is not accepted (its receiver answers 401 to everything).
    alert_routes_file: Path | None = Field(None, validation_alias="OPSBOT_ALERT_ROUTES")
    alert_token_alertmanager: SecretStr | None = Field(
        None, validation_alias="OPSBOT_ALERT_TOKEN_ALERTMANAGER"
    )
    alert_token_grafana: SecretStr | None = Field(None, validation_alias="OPSBOT_ALERT_TOKEN_GRAFANA")
    alert_token_generic: SecretStr | None = Field(None, validation_alias="OPSBOT_ALERT_TOKEN_GENERIC")
    # A change to an alert group goes in the card's thread once the group has been quiet this long
    # (merged with the changes before it): a storm gets one summary, not a reply per alert.
    # Slack's published budgets times this: Slack grants some apps more; against an unlimited
    # localslack (tests that are not about pacing) the bot need not pace itself either.
    slack_budget_scale: float = Field(1.0, gt=0, le=1000, validation_alias="OPSBOT_SLACK_BUDGET_SCALE")
    alert_settle_seconds: float = Field(45.0, ge=0, le=3600, validation_alias="OPSBOT_ALERT_SETTLE_SECONDS")
    # Alertmanager's API (v2) for silences created from alert cards; without it Silence is not offered.
    alertmanager_url: AnyUrl | None = Field(None, validation_alias="OPSBOT_ALERTMANAGER_URL")
    data_dir: Path = Field(Path(".opsbot"), validation_alias="OPSBOT_DATA_DIR")
    host: str = Field("127.0.0.1", validation_alias="OPSBOT_HOST")
    port: int = Field(3000, ge=0, le=65535, validation_alias="OPSBOT_PORT")
    # `opsbot serve`'s event loop: uvloop (a dependency) costs less CPU per request than asyncio's own.
    event_loop: str = Field("uvloop", pattern="^(uvloop|asyncio)$", validation_alias="OPSBOT_EVENT_LOOP")
    log_format: str = Field("auto", pattern="^(auto|json|console)$", validation_alias="OPSBOT_LOG_FORMAT")
    log_level: str = Field(
        "info", pattern="^(debug|info|warning|error)$", validation_alias="OPSBOT_LOG_LEVEL"
    )
    dedupe_ttl_seconds: int = Field(3600, ge=60, validation_alias="OPSBOT_DEDUPE_TTL")
    # How long one Slack Web API call may take before it counts as failed (then retried safely).
    slack_timeout_seconds: int = Field(10, ge=1, le=60, validation_alias="OPSBOT_SLACK_TIMEOUT")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        return _validate_scheme(value, ("postgresql", "postgres"))

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        return _validate_scheme(value, ("redis", "rediss", "unix"))

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    @field_validator("incident_channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        name = value.lstrip("#")
        if not name or len(name) > 80 or not all(c.islower() or c.isdigit() or c in "-_" for c in name):
            raise ValueError("must be a Slack channel name: lowercase letters, digits, - and _")
        return name

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    def missing_for_slack(self) -> list[str]:
        """Variables a real Slack connection still needs, in the order a newcomer should set them."""
        missing = []
        if self.slack_bot_token is None:
            missing.append("SLACK_BOT_TOKEN")
        if self.slack_signing_secret is None and not self.socket_mode:
            missing.append("SLACK_SIGNING_SECRET")
        return missing


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise `ConfigError` with one readable line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first.get("loc") or ("?",)
        field = str(loc[0])
        alias = _alias_for(field)
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        raise ConfigError(f"{alias}: {message}") from None


def _alias_for(field: str) -> str:
    info = Settings.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, str):
        return info.validation_alias
    return field.upper()

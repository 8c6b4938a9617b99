"""Paging on-call through the PagerDuty Events API v2 (trigger, deduplicated by incident id)."""

from __future__ import annotations

import aiohttp
from pydantic import BaseModel

from bot.logs import get_logger, redact_text

log = get_logger(__name__)

PD_SEVERITY = {"p0": "critical", "p1": "error", "p2": "warning", "p3": "info"}


class PageResult(BaseModel):
    ok: bool
    dedup_key: str | None = None
    error: str | None = None


class Pager:
    def __init__(self, url: str, routing_key: str | None) -> None:
        self._url = url
        self._routing_key = routing_key

    @property
    def configured(self) -> bool:
        return bool(self._routing_key)

    async def trigger(self, *, incident_id: str, severity: str, summary: str, link: str | None) -> PageResult:
        if not self._routing_key:
            return PageResult(ok=False, error="paging is not configured: set OPSBOT_PAGERDUTY_ROUTING_KEY")
        body = {
            "routing_key": self._routing_key,
            "event_action": "trigger",
            "dedup_key": incident_id,
            "payload": {
                "summary": summary[:1024],
                "source": "opsbot",
                "severity": PD_SEVERITY.get(severity, "error"),
                "custom_details": {"incident": incident_id, "slack": link},
            },
        }
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with (
                aiohttp.ClientSession(timeout=timeout, trust_env=False) as session,
                session.post(self._url, json=body, allow_redirects=False) as response,
            ):
                answer = await response.json(content_type=None)
                if response.status == 202 and isinstance(answer, dict) and answer.get("status") == "success":
                    return PageResult(ok=True, dedup_key=str(answer.get("dedup_key") or incident_id))
                message = answer.get("message") if isinstance(answer, dict) else None
                error = f"PagerDuty answered {response.status}: {message or 'no message'}"
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            error = f"PagerDuty could not be reached: {type(exc).__name__}"
        # PagerDuty's refusal may quote the routing key back.
        error = redact_text(error, [self._routing_key])
        log.warning("page_failed", incident_id=incident_id, error=error)
        return PageResult(ok=False, error=error)

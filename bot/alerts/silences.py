"""Silences in Alertmanager's API v2, created and expired from an alert card.

`POST /api/v2/silences` takes a `postableSilence` (matchers with `isRegex`/`isEqual`, `startsAt`,
`endsAt`, `createdBy`, `comment`) and answers `{"silenceID": …}`; `DELETE /api/v2/silence/{id}`
expires one. The base URL comes only from OPSBOT_ALERTMANAGER_URL; label values travel in the JSON
body, and the only thing ever put in a URL path is a silence id Alertmanager gave us, checked to be
a UUID first.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import aiohttp
from pydantic import BaseModel, Field, ValidationError

from bot.logs import get_logger

log = get_logger(__name__)
TIMEOUT = aiohttp.ClientTimeout(total=10)


class SilenceError(Exception):
    """Alertmanager refused or could not be reached; the message is safe to show."""


class Matcher(BaseModel):
    """One matcher of a `postableSilence`; the camelCase names are Alertmanager's."""

    name: str
    value: str
    isRegex: bool = False
    isEqual: bool = True


class PostableSilence(BaseModel):
    matchers: list[Matcher] = Field(min_length=1)
    startsAt: datetime
    endsAt: datetime
    createdBy: str = Field(min_length=1, max_length=200)
    comment: str = Field(min_length=1, max_length=2000)


class _Created(BaseModel):
    silenceID: uuid.UUID


def exact_matchers(labels: dict[str, str]) -> list[Matcher]:
    """One equality matcher per label: the silence covers exactly this group."""
    return [Matcher(name=name, value=value) for name, value in sorted(labels.items())]


class Silences:
    """Alertmanager's silences at `base_url` (OPSBOT_ALERTMANAGER_URL)."""

    def __init__(self, base_url: str) -> None:
        self._base = base_url.rstrip("/") + "/api/v2"

    async def create(self, silence: PostableSilence) -> str:
        """The new silence's id."""
        body = silence.model_dump(mode="json")
        text = await self._call("POST", f"{self._base}/silences", body)
        try:
            return str(_Created.model_validate_json(text).silenceID)
        except ValidationError:
            raise SilenceError("Alertmanager answered without a silence id") from None

    async def expire(self, silence_id: str) -> None:
        await self._call("DELETE", f"{self._base}/silence/{_checked(silence_id)}", None)

    async def _call(self, method: str, url: str, body: object) -> str:
        try:
            async with (
                aiohttp.ClientSession(timeout=TIMEOUT) as session,
                session.request(method, url, json=body) as response,
            ):
                text = await response.text()
                if response.status >= 400:
                    log.warning("alertmanager_refused", method=method, status=response.status)
                    raise SilenceError(f"Alertmanager answered {response.status}: {text.strip()[:200]}")
                return text
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("alertmanager_unreachable", method=method, error=type(exc).__name__)
            raise SilenceError(f"Alertmanager could not be reached ({type(exc).__name__})") from None


def _checked(silence_id: str) -> str:
    try:
        return str(uuid.UUID(silence_id))
    except ValueError:
        raise SilenceError("that is not an Alertmanager silence id") from None

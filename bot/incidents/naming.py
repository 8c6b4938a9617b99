"""Incident channel names within Slack's rules: lowercase letters, digits, `-` and `_`, at most 80."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

MAX_NAME = 80


def slug(title: str, limit: int = 40) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return words[:limit].rstrip("-") or "incident"


def channel_name(title: str, declared: datetime, attempt: int = 0) -> str:
    """`inc-20261122-checkout-is-down`, then `-2`, `-3`… when the name is taken."""
    base = f"inc-{declared:%Y%m%d}-{slug(title)}"
    suffix = f"-{attempt + 1}" if attempt else ""
    return base[: MAX_NAME - len(suffix)] + suffix

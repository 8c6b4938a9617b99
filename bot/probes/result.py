"""What every probe returns, and the conversions that keep it JSON-safe.

A probe result says whether the probe itself ran (`status`); whether what it found is good or bad
is judged elsewhere by thresholds comparing `values`. Rows and values are plain JSON data, so a
result can be stored in Postgres, rendered to Slack and compared before/after without surprises.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from decimal import Decimal
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Scalar = float | int | str | bool | None
ProbeStatus = Literal["ok", "error", "timeout"]
_IP = (IPv4Address, IPv6Address, IPv4Interface, IPv6Interface, IPv4Network, IPv6Network)


class ProbeResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: ProbeStatus
    values: dict[str, Scalar]
    columns: list[str] = []
    rows: list[list[Any]] = []
    truncated: bool = False
    latency_ms: float
    error: str | None = None


def json_safe(value: Any) -> Any:
    """A JSON-serialisable rendering of a database or protocol value.

    Decimals become floats, intervals seconds, timestamps ISO strings, non-UTF-8 bytes `\\x` hex;
    NaN and infinities become
    None because JSON has no spelling for them; anything unknown becomes its `str`.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return json_safe(float(value))
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "\\x" + raw.hex()
    if isinstance(value, (uuid.UUID, *_IP)):
        return str(value)
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item) for item in value]
    return str(value)


def scalar(value: Any) -> Scalar:
    """A value a threshold can compare: JSON scalars as they are, containers as compact JSON text."""
    safe = json_safe(value)
    if safe is None or isinstance(safe, bool | int | float | str):
        return safe
    return json.dumps(safe, separators=(",", ":"), ensure_ascii=False)

"""What an approval is bound to: a hash of the exact action, target, parameters and preview.

The approval card's buttons carry only the request id; at click time the hash is recomputed from
the stored request and the current catalogue, so a changed runbook, action or parameter — or an
edited row — no longer matches what the approver saw.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bot.probes import ProbeResult


def _digest(data: Any) -> str:
    return hashlib.sha256(
        json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def preview_digest(preview: ProbeResult | None) -> str:
    """Digest of what the preview showed (rows and values, not timing)."""
    if preview is None:
        return _digest(None)
    return _digest({"columns": preview.columns, "rows": preview.rows, "status": preview.status})


def binding_hash(
    *, runbook_id: str, version: int, action_id: str, target: str | None, params: dict[str, Any], preview: str
) -> str:
    return _digest(
        {
            "runbook": runbook_id,
            "version": version,
            "action": action_id,
            "target": target,
            "params": params,
            "preview": preview,
        }
    )


def preview_drift(before: ProbeResult | None, now: ProbeResult | None, margin: float) -> str | None:
    """Why the preview changed too much to approve what was requested, or None if it is within margin."""
    if before is None or now is None:
        return None
    if now.status != "ok":
        return f"the preview could not be recomputed ({now.error or now.status})"
    old, new = len(before.rows), len(now.rows)
    allowed = max(2, int(old * margin))
    if abs(new - old) > allowed:
        return f"the preview changed from {old} to {new} rows since the request (allowed ±{allowed})"
    return None


# Said on the card before anyone approves, and in the refusal of a risky request it would apply to.
NOTHING_NOW = "This would affect nothing right now"


def affects_nothing(preview: ProbeResult | None) -> bool:
    """True when a preview was computed and lists no rows: the action would change nothing now."""
    return preview is not None and preview.status == "ok" and bool(preview.columns) and not preview.rows

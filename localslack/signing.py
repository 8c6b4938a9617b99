"""Signs outgoing requests to the app the way Slack does (v0 HMAC), with knobs to sign them wrongly."""

from __future__ import annotations

import time
from typing import Literal

from slack_sdk.signature import SignatureVerifier

Tamper = Literal["bad_signature", "stale_timestamp"]

# Bolt rejects timestamps more than five minutes away; ten minutes is unambiguously stale.
STALE_BY_SECONDS = 600


def signed_headers(secret: str, body: bytes, *, tamper: Tamper | None = None) -> dict[str, str]:
    timestamp = int(time.time()) - (STALE_BY_SECONDS if tamper == "stale_timestamp" else 0)
    key = secret + "-wrong" if tamper == "bad_signature" else secret
    signature = SignatureVerifier(key).generate_signature(timestamp=str(timestamp), body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}

"""HTTP actions: one call to an admin endpoint at a constant path, with a JSON body.

Parameters are JSON values in the body (aiohttp serialises them), never part of the URL. The
target's headers (usually a bearer token) are sent, redirects are not followed so those headers
never reach another host, and proxies from the environment are ignored. The call succeeded if
the status is one the runbook expects; the start of the body is kept as output either way.
"""

from __future__ import annotations

import aiohttp
from yarl import URL

from bot.actions.result import OUTPUT_CHARS, Outcome
from bot.probes.base import Call, ProbeFailed
from bot.probes.http import client_error_reason, read_capped, target_headers
from bot.runbooks.steps import HttpCall
from bot.targets import HttpTarget


async def run_http_call(
    step: HttpCall, target: HttpTarget, session: aiohttp.ClientSession, call: Call
) -> Outcome:
    body = {key: call.resolve(value) for key, value in step.json_body.items()}
    try:
        async with session.request(
            step.method,
            URL(target.base_url + step.path),
            # A DELETE without a body sends none; the other methods always send a JSON object.
            json=body if body or step.method != "DELETE" else None,
            headers=target_headers(target),
            ssl=target.verify_tls,
            allow_redirects=False,
        ) as response:
            status = response.status
            content, truncated = await read_capped(response, OUTPUT_CHARS)
    except aiohttp.ClientError as exc:
        raise ProbeFailed(client_error_reason(exc)) from None
    error = None
    if status not in step.expect_status:
        expected = ", ".join(str(code) for code in step.expect_status)
        error = f"HTTP {status}, expected {expected}"
        if 300 <= status < 400:
            error += " (redirects are not followed)"
    return Outcome(
        values={"status_code": status},
        output=content.decode("utf-8", errors="replace"),
        truncated=truncated,
        error=error,
    )

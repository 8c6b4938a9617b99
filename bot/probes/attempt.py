"""One call to a target under a deadline: the skeleton the probe runner and the action executor share.

    done = await attempt(PROBE_TERMS, self._dispatch, spec, params, run_id="r-42", timeout_s=5.0,
                         targets=targets)

A probe and an action differ in what they send and in the words they report with; around the call
they are the same, and that lives here once: the deadline, what a target can do wrong mapped to a
status and a short reason, redaction with the registry's secrets, and one log line with the timing.
`attempt` never raises for anything a target does; anything else is a bug and propagates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, Self, TypeVar

import aiohttp
import psycopg
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.logs import redact_text
from bot.probes.base import Call, ProbeFailed, first_line, os_reason
from bot.targets import Targets

# What a target (or the network to it) can do to a probe or an action; anything else is a bug.
TARGET_FAILURES = (OSError, ValueError, psycopg.Error, RedisError, aiohttp.ClientError)


class Answer(Protocol):
    """What a target answered: a probe's findings or an action's outcome."""

    def redacted(self, secrets: Collection[str]) -> Self: ...


class Addressed(Protocol):
    """A probe spec or an action step: the target it runs against, and that target's kind."""

    @property
    def target(self) -> str: ...

    @property
    def kind(self) -> str: ...


StatusT = TypeVar("StatusT", bound=str)
AnswerT = TypeVar("AnswerT", bound=Answer)
SpecT = TypeVar("SpecT", bound=Addressed)


@dataclass(frozen=True)
class Terms(Generic[StatusT]):
    """How one sort of call reports its end: status words, the timeout reason, its log line."""

    ok: StatusT
    error: StatusT
    timeout: StatusT
    event: str
    ok_level: int
    log: structlog.stdlib.BoundLogger
    timeout_caveat: str = ""


@dataclass(frozen=True)
class Attempt(Generic[AnswerT, StatusT]):
    """How one call ended; `answer` and `error` are already redacted."""

    answer: AnswerT | None  # None when the target gave no answer
    status: StatusT
    error: str | None
    latency_ms: float


async def attempt(
    terms: Terms[StatusT],
    work: Callable[[SpecT, Call], Awaitable[AnswerT]],
    spec: SpecT,
    params: Mapping[str, Any],
    *,
    run_id: str,
    timeout_s: float,
    targets: Targets,
    refusal: Callable[[AnswerT], str | None] | None = None,
) -> Attempt[AnswerT, StatusT]:
    """Run `work(spec, call)` by the deadline; `refusal` reads a failure out of an answer (HTTP 500)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    call = Call(params=params, run_id=run_id, timeout_s=timeout_s, deadline=started + timeout_s)
    answer: AnswerT | None = None
    status: StatusT = terms.ok
    error: str | None = None
    try:
        async with asyncio.timeout_at(call.deadline):
            answer = await work(spec, call)
        if refusal is not None and (error := refusal(answer)) is not None:
            status = terms.error
    except ProbeFailed as exc:
        status = terms.timeout if exc.status == "timeout" else terms.error
        error = exc.message
    except (TimeoutError, RedisTimeoutError):
        status, error = terms.timeout, f"timed out after {timeout_s:g}s{terms.timeout_caveat}"
    except TARGET_FAILURES as exc:
        status, error = terms.error, failure_reason(exc)
    latency_ms = round((loop.time() - started) * 1000.0, 2)
    # Every target's secrets, not only this one's: a table or an answer may quote another's.
    secrets = targets.secrets()
    error = redact_text(error, secrets) if error is not None else None
    terms.log.log(
        terms.ok_level if status == terms.ok else logging.WARNING,
        terms.event,
        run_id=run_id,
        target=spec.target,
        kind=spec.kind,
        status=status,
        latency_ms=latency_ms,
        error=error,
    )
    redacted = answer.redacted(secrets) if answer is not None else None
    return Attempt(answer=redacted, status=status, error=error, latency_ms=latency_ms)


def failure_reason(exc: BaseException) -> str:
    """'cannot connect: Connection refused', or the first line of what the target said."""
    if isinstance(exc, RedisConnectionError | aiohttp.ClientConnectorError):
        return f"cannot connect: {os_reason(exc) or first_line(str(exc))}"
    if isinstance(exc, OSError):
        return os_reason(exc) or type(exc).__name__
    return first_line(str(exc)) or type(exc).__name__

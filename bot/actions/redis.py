"""Redis actions: one command from a short allow-list, each argument sent as one protocol element.

The Redis protocol sends every argument as a length-prefixed string, so a parameter's value is one
argument whatever it contains. The runbook fixes the shape: CONFIG SET names its settings as
literals (a parameter may choose a value, never which setting — `dir` and `dbfilename` are how a
writable Redis is turned into a file writer), DEL/UNLINK/CLIENT KILL need arguments, FLUSHDB takes
at most ASYNC or SYNC, and MEMORY PURGE and BGSAVE (a snapshot to Redis's own configured file) none.
"""

from __future__ import annotations

from typing import Any

from bot.actions.result import Outcome
from bot.probes.base import BindValue, Call, ProbeFailed, ProbeSpecError, param_ref
from bot.probes.redis import RedisClients
from bot.probes.result import Scalar, scalar
from bot.runbooks.steps import RedisWrite
from bot.targets import RedisTarget

_FLUSH_MODES = frozenset({"ASYNC", "SYNC"})


def check_redis_write(step: RedisWrite) -> None:
    """Raise `ProbeSpecError` if the arguments do not fit the command."""
    args = step.args
    for position, arg in enumerate(args):
        if arg is None or isinstance(arg, bool):
            raise ProbeSpecError(f"args[{position}]: {arg!r} is not a Redis argument; quote it")
    match step.command:
        case "CONFIG SET":
            if not args or len(args) % 2:
                raise ProbeSpecError("CONFIG SET takes setting/value pairs")
            for name in args[::2]:
                if not isinstance(name, str) or param_ref(name) is not None:
                    raise ProbeSpecError(f"CONFIG SET: the setting {name!r} must be a literal name")
        case "DEL" | "UNLINK" | "CLIENT KILL":
            if not args:
                raise ProbeSpecError(f"{step.command} needs at least one argument")
        case "FLUSHDB":
            if len(args) > 1 or any(str(arg).upper() not in _FLUSH_MODES for arg in args):
                raise ProbeSpecError("FLUSHDB takes nothing, ASYNC or SYNC")
        case "MEMORY PURGE" | "BGSAVE":
            if args:
                raise ProbeSpecError(f"{step.command} takes no arguments")


async def run_redis_write(
    step: RedisWrite, target: RedisTarget, clients: RedisClients, call: Call
) -> Outcome:
    args = [_argument(value, call) for value in step.args]
    client = clients.client(step.target, target)
    # redis-py sends "CONFIG SET" as the two words the server expects; only allow-listed names get here.
    reply = await client.execute_command(step.command, *args)  # type: ignore[no-untyped-call]
    result = _reply(reply)
    return Outcome(values={"result": result}, output=str(result))


def _argument(value: BindValue, call: Call) -> str | int | float:
    resolved: Any = call.resolve(value)
    if resolved is None or isinstance(resolved, bool | dict | list):
        name = param_ref(value)
        raise ProbeFailed(f"parameter {name!r} cannot be a Redis argument")
    if isinstance(resolved, str | int | float):
        return resolved
    return str(resolved)


def _reply(reply: Any) -> Scalar:
    # redis-py turns +OK into True for these commands; the person reading Slack expects OK.
    if reply is True:
        return "OK"
    return scalar(reply)

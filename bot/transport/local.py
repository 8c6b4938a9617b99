"""The local transport: an allowed program run as a subprocess of the bot, without a shell.

The process runs in its own session with stdin closed and a minimal environment (PATH, LANG and
the target's `env`). When the run ends — normally, by timeout or by cancellation — the whole
process group is killed, so nothing the command started survives it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from contextlib import suppress

from bot.targets import CommandTarget
from bot.transport.output import Finished, read_tail

_LANG = "C.UTF-8"


async def run_argv(program: str, args: list[str], target: CommandTarget) -> Finished:
    """Run `program` (an allowed absolute path) with `args`: no shell, own session, capped output.

    The process group is killed however this ends — exit, timeout or cancellation — so nothing
    the command started in the background outlives it.
    """
    env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": _LANG}
    env |= {name: value.get_secret_value() for name, value in target.env.items()}
    process = await asyncio.create_subprocess_exec(
        program,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=target.cwd,
        env=env,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        tail, total, lines = await read_tail(process.stdout, target.max_output_bytes)
        exit_code = await process.wait()
    finally:
        await _kill_group(process)
    return Finished(exit_code=exit_code, tail=tail, total_bytes=total, lines=lines)


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    """Kill everything in the command's process group (children included) and reap the leader."""
    with suppress(ProcessLookupError):  # the group is already empty
        os.killpg(process.pid, signal.SIGKILL)
    if process.returncode is None:
        await process.wait()

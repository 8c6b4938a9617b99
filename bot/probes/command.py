"""Command probes: an argv list run without a shell on a `command` target (the bot's own host).

argv[0] must be one of the target's allowed programs (resolved to an absolute path when the
targets file was loaded). A parameter can only be a whole argv element, written `{name}`, so
`$(reboot)` or `; rm -rf /` arrives as one literal argument; values that start with `-` are
refused because the program would read them as options.

A probe may name a regular expression (`match`); `matched_lines` then counts the output lines it
finds, so a threshold can judge what a command *said* (containers not running, a filesystem at
9x %) and not only whether it exited 0. There is no shell to pipe into `grep`, and many tools exit
0 whatever they report.

The process runs in its own session with stdin closed and a minimal environment. Output
(stdout and stderr together) is read as it comes and only the last `max_output_bytes` are kept.
When the run ends — normally, by timeout or by cancellation — the whole process group is killed,
so nothing the command started survives it. `run_argv` does this for the action executor too.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from bot.logs import redact_text
from bot.probes.base import (
    Call,
    Findings,
    ProbeFailed,
    ProbeSpecError,
    SpecBase,
    check_literal_or_ref,
    param_ref,
    refs_in,
)
from bot.probes.result import Scalar
from bot.targets import CommandTarget

_READ_CHUNK = 65_536
_LINE_CHARS = 500
_LANG = "C.UTF-8"


class CommandProbe(SpecBase):
    """An argv template; an element written `{name}` is replaced by that parameter, whole."""

    kind: Literal["command"] = "command"
    argv: list[str] = Field(min_length=1, max_length=64)
    tail_lines: int = Field(50, ge=1, le=1000)
    # Lines of output (all kept lines, not only the last `tail_lines`) matching this are counted
    # as `matched_lines`.
    match: str | None = Field(None, min_length=1, max_length=500)

    @field_validator("match")
    @classmethod
    def _match(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _argv(self) -> Self:
        if param_ref(self.argv[0]) is not None or "{" in self.argv[0] or "}" in self.argv[0]:
            raise ValueError("argv[0]: the program must be a constant")
        for position, arg in enumerate(self.argv):
            check_literal_or_ref(arg, f"argv[{position}]")
            if "\x00" in arg:
                raise ValueError(f"argv[{position}] contains a NUL byte")
        return self

    def param_names(self) -> frozenset[str]:
        return refs_in(self.argv)


async def run_command(spec: CommandProbe, target: CommandTarget, call: Call) -> Findings:
    program = target.program_path(spec.argv[0])
    if program is None:
        raise ProbeSpecError(f"{spec.argv[0]} is not an allowed program on target {spec.target!r}")
    args = [_argument(arg, call) for arg in spec.argv[1:]]
    finished = await run_argv(program, args, target)
    return _findings(finished, target, spec.tail_lines, spec.match)


@dataclass(frozen=True)
class Finished:
    """How an argv run ended: its exit code, the last bytes of its output and how much there was."""

    exit_code: int
    tail: bytes
    total_bytes: int
    lines: int

    @property
    def truncated(self) -> bool:
        return self.total_bytes > len(self.tail)

    def kept_lines(self, secrets: set[str]) -> list[str]:
        """The whole output lines in the tail, redacted; a line cut by the byte cap is dropped."""
        kept = self.tail.decode("utf-8", errors="replace").splitlines()
        if self.truncated and kept:
            kept = kept[1:]
        return [redact_text(line, secrets) for line in kept]


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
        tail, total, lines = await _read_tail(process, target.max_output_bytes)
        exit_code = await process.wait()
    finally:
        await _kill_group(process)
    return Finished(exit_code=exit_code, tail=tail, total_bytes=total, lines=lines)


def argument_text(name: str, value: Any) -> str:
    """A parameter's value as one argv element; raises `ProbeFailed` for values that are unsafe."""
    if value is None or isinstance(value, bool | dict | list):
        raise ProbeFailed(f"parameter {name!r} cannot be a command argument")
    text = str(value)
    if text.startswith("-"):
        raise ProbeFailed(f"parameter {name!r} starts with '-' and would be read as an option")
    if "\x00" in text:
        raise ProbeFailed(f"parameter {name!r} contains a NUL byte")
    return text


def _argument(arg: str, call: Call) -> str:
    name = param_ref(arg)
    return arg if name is None else argument_text(name, call.params[name])


async def _read_tail(process: asyncio.subprocess.Process, cap: int) -> tuple[bytes, int, int]:
    """The last `cap` bytes of output, the total byte count and the number of lines."""
    assert process.stdout is not None
    tail = bytearray()
    total = lines = 0
    last = b"\n"
    while chunk := await process.stdout.read(_READ_CHUNK):
        total += len(chunk)
        lines += chunk.count(b"\n")
        last = chunk[-1:]
        tail += chunk
        if len(tail) > cap:
            del tail[: len(tail) - cap]
    if last != b"\n":
        lines += 1
    return bytes(tail), total, lines


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    """Kill everything in the command's process group (children included) and reap the leader."""
    with suppress(ProcessLookupError):  # the group is already empty
        os.killpg(process.pid, signal.SIGKILL)
    if process.returncode is None:
        await process.wait()


def _findings(finished: Finished, target: CommandTarget, tail_lines: int, match: str | None) -> Findings:
    kept = finished.kept_lines(target.secrets())
    shown = [_shorten(line) for line in kept[-tail_lines:]]
    values: dict[str, Scalar] = {
        "exit_code": finished.exit_code,
        "output_lines": finished.lines,
        "output_bytes": finished.total_bytes,
        "last_line": shown[-1] if shown else None,
    }
    if match is not None:
        pattern = re.compile(match)
        values["matched_lines"] = sum(1 for line in kept if pattern.search(line))
    return Findings(
        values=values,
        columns=["output"],
        rows=[[line] for line in shown],
        truncated=finished.truncated or len(kept) > tail_lines,
    )


def _shorten(line: str) -> str:
    return line if len(line) <= _LINE_CHARS else line[: _LINE_CHARS - 1] + "…"

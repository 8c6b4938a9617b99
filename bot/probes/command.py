"""Command probes: an argv list run without a shell on a `command` target (the bot's own host).

argv[0] must be one of the target's allowed programs (resolved to an absolute path when the
targets file was loaded). A parameter can only be a whole argv element, written `{name}`, so
`$(reboot)` or `; rm -rf /` arrives as one literal argument; values that start with `-` are
refused because the program would read them as options.

A probe may name a regular expression (`match`); `matched_lines` then counts the output lines it
finds, so a threshold can judge what a command *said* (containers not running, a filesystem at
9x %) and not only whether it exited 0. There is no shell to pipe into `grep`, and many tools exit
0 whatever they report.

Where the argv runs is the target's transport (`bot.transport`): a subprocess here or a process
on a remote host over SSH, in both cases with stdin closed, output (stdout and stderr together)
capped to the last `max_output_bytes`, and the whole process group killed when the run ends —
normally, by timeout or by cancellation. An SSH target that cannot be reached, refuses the key or
shows an unpinned host key fails the probe with that reason (its check is `unknown`, never ok).
`run_on` does this for the action executor too.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

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
from bot.transport import CommandHosts, Finished, HostUnreachable

_LINE_CHARS = 500


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


async def run_command(spec: CommandProbe, target: CommandTarget, hosts: CommandHosts, call: Call) -> Findings:
    program = target.program_path(spec.argv[0])
    if program is None:
        raise ProbeSpecError(f"{spec.argv[0]} is not an allowed program on target {spec.target!r}")
    args = [_argument(arg, call) for arg in spec.argv[1:]]
    finished = await run_on(hosts, target, spec.target, program, args)
    return _findings(finished, target, spec.tail_lines, spec.match)


async def run_on(
    hosts: CommandHosts, target: CommandTarget, name: str, program: str, args: list[str]
) -> Finished:
    """Run a checked argv on `target` by its transport; an unreachable host fails with the reason."""
    try:
        return await hosts.run(target, name, program, args)
    except HostUnreachable as exc:
        raise ProbeFailed(exc.message) from None


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

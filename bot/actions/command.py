"""Command actions: an argv list on a `command` target, run as the command probe runs it.

argv[0] is a constant naming one of the target's allowed programs; a parameter is one whole
argv element (`$(reboot)` stays that text), and a value starting with `-` is refused. The
process has no shell, no stdin and a minimal environment, its whole process group is killed when
the run ends or times out, and only the last lines of its output are kept. Exit code 0 succeeds.
"""

from __future__ import annotations

from bot.actions.result import Outcome, tail_text
from bot.probes.base import BindValue, Call, ProbeSpecError, first_line, param_ref
from bot.probes.command import argument_text, run_argv
from bot.runbooks.steps import CommandRun
from bot.targets import CommandTarget


def check_command_run(step: CommandRun, target: CommandTarget) -> str:
    """The absolute path of the program to run; raises `ProbeSpecError` if it is not allowed."""
    program = step.argv[0]
    if not isinstance(program, str) or param_ref(program) is not None:
        raise ProbeSpecError("argv[0]: the program must be a constant name")
    path = target.program_path(program)
    if path is None:
        raise ProbeSpecError(f"{program} is not an allowed program on target {step.target!r}")
    for position, arg in enumerate(step.argv[1:], start=1):
        if arg is None or isinstance(arg, bool):
            raise ProbeSpecError(f"argv[{position}]: {arg!r} is not a command argument; quote it")
        if isinstance(arg, str) and "\x00" in arg:
            raise ProbeSpecError(f"argv[{position}] contains a NUL byte")
    return path


async def run_command_run(step: CommandRun, target: CommandTarget, call: Call) -> Outcome:
    program = check_command_run(step, target)
    args = [_argument(arg, call) for arg in step.argv[1:]]
    finished = await run_argv(program, args, target)
    lines = finished.kept_lines(target.secrets())
    output, cut = tail_text("\n".join(lines))
    error = None
    if finished.exit_code != 0:
        error = f"exit code {finished.exit_code}"
        if lines and (last := first_line(lines[-1])):
            error += f": {last}"
    return Outcome(
        values={"exit_code": finished.exit_code},
        output=output,
        truncated=finished.truncated or cut,
        error=error,
    )


def _argument(arg: BindValue, call: Call) -> str:
    name = param_ref(arg)
    return str(arg) if name is None else argument_text(name, call.params[name])

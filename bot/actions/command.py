"""Command actions: an argv list on a `command` target, run as the command probe runs it (locally
or over SSH, by the target's transport).

argv[0] is a constant naming one of the target's allowed programs; a parameter is one whole
argv element (`$(reboot)` stays that text), and a value starting with `-` is refused. The
process has no shell, no stdin and a minimal environment, its whole process group is killed when
the run ends or times out, and only the last lines of its output are kept. Exit code 0 succeeds.

A step with `then:` is a fixed sequence (stop, wait, start) approved as one action: the argvs run
one after another, each only if the one before exited 0, all within the action's one deadline.
Every program in the sequence is checked before the first one starts, so a sequence never stops
half-way because a later program was not allowed.
"""

from __future__ import annotations

from bot.actions.result import Outcome, tail_text
from bot.logs import redact_text
from bot.probes.base import BindValue, Call, ProbeSpecError, first_line, param_ref
from bot.probes.command import argument_text, run_on
from bot.probes.result import Scalar
from bot.runbooks.steps import CommandRun
from bot.targets import CommandTarget
from bot.transport import CommandHosts


def check_command_run(step: CommandRun, target: CommandTarget) -> list[str]:
    """The absolute path of each program to run, in order; raises `ProbeSpecError` if one is not allowed."""
    return [
        _program_path(argv, target, step.target, where="argv" if index == 0 else f"then[{index - 1}]")
        for index, argv in enumerate(step.argvs)
    ]


def _program_path(argv: list[BindValue], target: CommandTarget, target_name: str, *, where: str) -> str:
    program = argv[0]
    if not isinstance(program, str) or param_ref(program) is not None:
        raise ProbeSpecError(f"{where}[0]: the program must be a constant name")
    path = target.program_path(program)
    if path is None:
        raise ProbeSpecError(f"{program} is not an allowed program on target {target_name!r}")
    for position, arg in enumerate(argv[1:], start=1):
        if arg is None or isinstance(arg, bool):
            raise ProbeSpecError(f"{where}[{position}]: {arg!r} is not a command argument; quote it")
        if isinstance(arg, str) and "\x00" in arg:
            raise ProbeSpecError(f"{where}[{position}] contains a NUL byte")
    return path


async def run_command_run(
    step: CommandRun, target: CommandTarget, hosts: CommandHosts, call: Call
) -> Outcome:
    programs = check_command_run(step, target)
    # Every parameter is turned into an argument before anything runs: a bad value refuses the
    # whole sequence instead of stopping it after the first command.
    commands = [
        (program, [_argument(arg, call) for arg in argv[1:]])
        for program, argv in zip(programs, step.argvs, strict=True)
    ]
    sequence = len(commands) > 1
    lines: list[str] = []
    truncated = False
    exit_code = 0
    error = None
    ran = 0
    for index, (program, args) in enumerate(commands):
        finished = await run_on(hosts, target, step.target, program, args)
        ran += 1
        kept = finished.kept_lines(target.secrets())
        if sequence:
            shown = " ".join([str(step.argvs[index][0]), *args])
            lines.append(redact_text(f"$ {shown}", target.secrets()))
        lines += kept
        truncated = truncated or finished.truncated
        exit_code = finished.exit_code
        if exit_code != 0:
            error = f"exit code {exit_code}"
            if kept and (last := first_line(kept[-1])):
                error += f": {last}"
            if sequence:
                error = f"step {index + 1} of {len(commands)} ({step.argvs[index][0]}): {error}"
                if index + 1 < len(commands):
                    error += " — the steps after it were not run"
            break
    output, cut = tail_text("\n".join(lines))
    values: dict[str, Scalar] = {"exit_code": exit_code}
    if sequence:
        values["steps_run"] = ran
    return Outcome(values=values, output=output, truncated=truncated or cut, error=error)


def _argument(arg: BindValue, call: Call) -> str:
    name = param_ref(arg)
    return str(arg) if name is None else argument_text(name, call.params[name])

"""The seam between command probes/actions and the transports: pick local or SSH by the target."""

from __future__ import annotations

from bot.targets import CommandTarget
from bot.transport.local import run_argv
from bot.transport.output import Finished
from bot.transport.ssh import SshHosts


class CommandHosts:
    """Runs checked argvs on command targets; owns the SSH connections until `close`."""

    def __init__(self) -> None:
        self._ssh = SshHosts()

    async def run(self, target: CommandTarget, name: str, program: str, args: list[str]) -> Finished:
        """Run `program` (from `target.program_path`) with whole arguments on `target`, named `name`.

        Raises `HostUnreachable` when an SSH target cannot be reached or refuses us.
        """
        if target.transport == "ssh":
            return await self._ssh.run(target, name, program, args)
        return await run_argv(program, args, target)

    async def close(self) -> None:
        await self._ssh.close()

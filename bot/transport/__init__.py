"""Where a command target's argv runs: a subprocess on this host, or a process on a remote host over SSH.

Both transports take the same already-checked argv (an allowed program and whole arguments) and
give back the same `Finished` (exit code, the capped tail of the output), so command probes and
command actions do not know, and runbooks do not say, where their commands run. `CommandHosts`
picks the transport by the target and owns the SSH connections; close it with the runner.
"""

from bot.transport.hosts import CommandHosts
from bot.transport.output import Finished
from bot.transport.ssh import HostUnreachable

__all__ = ["CommandHosts", "Finished", "HostUnreachable"]

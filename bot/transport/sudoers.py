"""The sudoers lines an SSH target needs on its host, from its `ssh.sudo` list (`opsbot targets sudoers`).

sudo matches commands by absolute path. A program the target lists by absolute path gets a line
ready to install; one listed by bare name gets a line with a placeholder that `visudo` refuses, so
the path is looked up on the host (`command -v NAME`) and never guessed here.
"""

from __future__ import annotations

import os

from bot.targets import CommandTarget


def sudoers_text(name: str, target: CommandTarget) -> str:
    """A sudoers.d file for `target` (named `name`): one NOPASSWD line per program in `ssh.sudo`."""
    if target.ssh is None:
        raise ValueError(f"target {name!r} runs commands locally: sudo is only for SSH targets")
    ssh = target.ssh
    lines = [
        f"# /etc/sudoers.d/opsbot-{name}: what opsbot may run as root on {ssh.host} (target {name}).",
        f"# Install with: visudo -f /etc/sudoers.d/opsbot-{name}",
        "# opsbot runs these as `sudo -n -- PROGRAM ARGS…`: no password prompt, no tty.",
    ]
    if not ssh.sudo:
        lines.append(f"# (target {name} lists no programs under ssh.sudo: nothing to allow)")
    for program in ssh.sudo:
        if os.path.isabs(program):
            lines.append(f"{ssh.user} ALL=(root) NOPASSWD: {program}")
        else:
            lines.append(
                f"# {program}: put the output of `command -v {program}` on {ssh.host} in place of <…>"
            )
            lines.append(f"{ssh.user} ALL=(root) NOPASSWD: <path of {program}>")
    return "\n".join(lines) + "\n"

"""The SSH transport suite runs against the real sshd of `tests/ssh/sshd.py`, with the probe and
action suites' runners (always closed at the end of a test)."""

from tests.actions.conftest import executor_for
from tests.probes.conftest import runner_for
from tests.ssh.sshd import sshd

__all__ = ["executor_for", "runner_for", "sshd"]

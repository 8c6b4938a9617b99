"""Probes: typed, time-boxed, read-only looks at real systems named in the targets registry.

One module per target kind (postgres, redis, http, prometheus, command) holds its spec model and
its run function; `runner` ties them to the registry and owns the connections; `attempt` is the
skeleton around one call (deadline, failures, redaction, log line) that probes and actions share.
"""

from bot.probes.base import ProbeSpecError
from bot.probes.command import CommandProbe
from bot.probes.http import HttpProbe
from bot.probes.postgres import PostgresPools, PostgresProbe, execute_one, transaction
from bot.probes.prometheus import PrometheusProbe
from bot.probes.redis import RedisProbe
from bot.probes.result import ProbeResult
from bot.probes.runner import PROBE_SPEC, ProbeRunner, ProbeSpec, parse_probe, run_probe

__all__ = [
    "PROBE_SPEC",
    "CommandProbe",
    "HttpProbe",
    "PostgresPools",
    "PostgresProbe",
    "ProbeResult",
    "ProbeRunner",
    "ProbeSpec",
    "ProbeSpecError",
    "PrometheusProbe",
    "RedisProbe",
    "execute_one",
    "parse_probe",
    "run_probe",
    "transaction",
]

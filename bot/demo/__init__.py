"""A simulated "sick system" the runbook catalogue is tested and demonstrated against.

`SickSystem.running(...)` starts an application backend (blue and green), a Prometheus query
API and a host of stand-in programs on loopback, next to the real PostgreSQL and Redis the caller
provides, and writes a targets file that points the runbooks' standard target names at them.
"""

from bot.demo.api import ApiState, build_api_app
from bot.demo.host import HostLayout, build_host
from bot.demo.prometheus import build_prometheus_app
from bot.demo.system import SickSystem

__all__ = ["ApiState", "HostLayout", "SickSystem", "build_api_app", "build_host", "build_prometheus_app"]

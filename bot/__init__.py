"""opsbot: runbooks turned into executable, audited Slack workflows."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("opsbot")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

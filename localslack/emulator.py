"""LocalSlack: one emulated workspace served on a loopback port, with its driver and query helpers."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from localslack.config import ChannelSeed, TeamSeed, Timing, UserSeed, WorkspaceSeed
from localslack.core import Core
from localslack.delivery import Transport
from localslack.driver import Driver
from localslack.faults import Faults
from localslack.queries import Queries
from localslack.recorder import Recorder
from localslack.server import build_app
from localslack.state import Workspace


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LocalSlack(Queries, Driver):
    """A Slack workspace plus the Slack servers around it, for the unmodified slack_sdk/slack_bolt clients.

    Deliveries go to `request_url` over signed HTTP; with no request URL they go over Socket Mode.
    The Web API keeps Slack's rate limits (localslack.limits) unless `rate_limits` is False.
    """

    def __init__(
        self,
        seed: WorkspaceSeed | None = None,
        *,
        timing: Timing | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        request_url: str | None = None,
        rate_limits: bool = True,
    ) -> None:
        if not _is_loopback(host):
            raise ValueError(f"LocalSlack only listens on loopback addresses, not {host!r}")
        self._core = Core(
            state=Workspace(seed), timing=timing or Timing(), faults=Faults(rate_limits=rate_limits)
        )
        self._transport = Transport(self._core)
        self._transport.request_url = request_url
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    @classmethod
    @asynccontextmanager
    async def running(cls, seed: WorkspaceSeed | None = None, **kwargs: Any) -> AsyncIterator[LocalSlack]:
        slack = cls(seed, **kwargs)
        await slack.start()
        try:
            yield slack
        finally:
            await slack.stop()

    async def start(self) -> None:
        self._core.changes.open()
        self._runner = web.AppRunner(build_app(self._core, self), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        self._core.state.public_base = f"http://{self._host}:{self._port}"
        await self._transport.start()

    async def stop(self) -> None:
        # Live web clients hold their event streams open; aiohttp's shutdown would wait for them.
        self._core.changes.close()
        await self._transport.close()
        await self._core.sockets.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def state(self) -> Workspace:
        return self._core.state

    @property
    def recorder(self) -> Recorder:
        return self._core.recorder

    @property
    def faults(self) -> Faults:
        return self._core.faults

    @property
    def timing(self) -> Timing:
        return self._core.timing

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return self._core.http_base

    @property
    def api_url(self) -> str:
        return f"{self._core.http_base}/api/"

    @property
    def bot_token(self) -> str:
        return self.state.app.bot_token

    @property
    def app_token(self) -> str:
        return self.state.app.app_token

    @property
    def signing_secret(self) -> str:
        return self.state.app.signing_secret

    @property
    def team_id(self) -> str:
        return self.state.team_id

    @property
    def bot_user_id(self) -> str:
        return self.state.bot_user_id

    @property
    def bot_id(self) -> str:
        return self.state.bot_id

    @property
    def app_id(self) -> str:
        return self.state.app.app_id

    @property
    def request_url(self) -> str | None:
        return self._transport.request_url

    @request_url.setter
    def request_url(self, url: str | None) -> None:
        self._transport.request_url = url

    @property
    def socket_mode(self) -> bool:
        return self._transport.socket_mode

    def use_socket_mode(self) -> None:
        self._transport.request_url = None

    async def wait_for_socket(self, count: int = 1, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        await self._core.sockets.wait_connected(count, timeout)

    async def disconnect_sockets(self, reason: str = "refresh_requested") -> None:
        await self._core.sockets.disconnect(reason)

    def extend(
        self,
        *,
        users: list[UserSeed] | None = None,
        channels: list[ChannelSeed] | None = None,
        external_teams: list[TeamSeed] | None = None,
        add_members: Mapping[str, list[str]] | None = None,
    ) -> None:
        """Adds guests, partner orgs, their people and shared channels to this workspace, running or not;
        `add_members` puts people into seeded channels ({"#general": ["gina"]}). The seed's rules apply:
        a bad addition raises ValueError (pydantic's ValidationError is one) and adds nothing."""
        self._core.state.extend(
            users=users, channels=channels, external_teams=external_teams, add_members=add_members
        )
        self._core.changes.bump()

    def env(self) -> dict[str, str]:
        """Environment variables that point a bot at this workspace."""
        return {
            "SLACK_API_URL": self.api_url,
            "SLACK_BOT_TOKEN": self.bot_token,
            "SLACK_SIGNING_SECRET": self.signing_secret,
            "SLACK_APP_TOKEN": self.app_token,
        }

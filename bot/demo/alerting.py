"""Real Prometheus and Alertmanager around the sick system: the seed alert rules fire into opsbot.

    async with alerting_stack(
        workdir=tmp, metrics_url=system.urls["api"], webhook_url=f"{bot.url}/alerts/alertmanager",
        token=token, alerts={"APIHighErrorRate"},
    ) as stack:
        ...  # stack.prometheus_url, stack.alertmanager_url

Debian's `prometheus` and `prometheus-alertmanager` binaries run on free loopback ports with their
storage in `workdir`. The configurations are the shipped ones (`deploy/prometheus/`) with short
timings: Prometheus scrapes the sick backend's `/metrics` and evaluates a copy of the seed rules whose
`for` is seconds instead of minutes; Alertmanager's receiver is the given webhook with the bearer
token in a file, as in production. Both processes stay in the caller's process group, so a demo killed
outright takes them with it; leaving the context stops them.

`DemoAlerts` is what `opsbot demo` runs: the same stack in the background with demo timings and the
example routes adapted to the demo's channels, or, without the binaries, a stand-in that posts one
Alertmanager-format notification (`bot.alerts.samples`) and says it is a stand-in.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Collection
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import yaml

from bot.alerts.samples import alertmanager_notification
from bot.logs import get_logger

log = get_logger(__name__)


def _deploy_dir() -> Path:
    """`deploy/` beside the code (a source checkout), else the image's copy."""
    beside_code = Path(__file__).resolve().parents[2] / "deploy"
    return beside_code if beside_code.is_dir() else Path("/opt/opsbot/deploy")


DEPLOY = _deploy_dir()
SEED_RULES = DEPLOY / "prometheus" / "opsbot-seed-alerts.yml"
ALERTMANAGER_CONFIG = DEPLOY / "prometheus" / "alertmanager.yml"
BINARIES = {"prometheus": "prometheus", "alertmanager": "prometheus-alertmanager"}
START_TIMEOUT_S = 30.0


class AlertingUnavailable(RuntimeError):
    """A binary is missing or a process did not become ready; the message says which."""


@dataclass(frozen=True)
class Timings:
    """How fast the stack reacts: scrape and rule evaluation, each rule's `for`, Alertmanager grouping."""

    interval: str = "1s"
    rule_for: str = "2s"
    group_wait: str = "1s"
    group_interval: str = "1s"


TEST_TIMINGS = Timings()


@dataclass(frozen=True)
class AlertingStack:
    prometheus_url: str
    alertmanager_url: str


def missing_binaries() -> list[str]:
    """Debian package names of the binaries that are not installed."""
    return [package for package in BINARIES.values() if shutil.which(package) is None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def quick_rules(rules: dict[str, Any], *, rule_for: str, alerts: Collection[str] | None) -> dict[str, Any]:
    """The seed rules with every `for` set to `rule_for`, keeping only the alert names in `alerts`."""
    groups = []
    for group in rules["groups"]:
        kept = [
            {**rule, "for": rule_for}
            for rule in group["rules"]
            if alerts is None or rule.get("alert") in alerts
        ]
        if kept:
            groups.append({**group, "rules": kept})
    return {"groups": groups}


def alertmanager_config(*, webhook_url: str, token_file: Path, timings: Timings) -> dict[str, Any]:
    """The shipped Alertmanager configuration pointed at `webhook_url`, with `timings`."""
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_CONFIG.read_text("utf-8"))
    config["route"].update(group_wait=timings.group_wait, group_interval=timings.group_interval)
    webhook = config["receivers"][0]["webhook_configs"][0]
    webhook["url"] = webhook_url
    webhook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    return config


def prometheus_config(
    *, metrics_url: str, alertmanager: str, rules_file: Path, timings: Timings
) -> dict[str, Any]:
    target = urlsplit(metrics_url)
    return {
        "global": {"scrape_interval": timings.interval, "evaluation_interval": timings.interval},
        "rule_files": [str(rules_file)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [
            {
                "job_name": "api",
                "scheme": target.scheme or "http",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [target.netloc]}],
            }
        ],
    }


def _write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), "utf-8")
    return path


@asynccontextmanager
async def alerting_stack(
    *,
    workdir: Path,
    metrics_url: str,
    webhook_url: str,
    token: str,
    alerts: Collection[str] | None = None,
    ports: tuple[int, int] | None = None,
    timings: Timings = TEST_TIMINGS,
) -> AsyncIterator[AlertingStack]:
    """Start Alertmanager, then Prometheus; yield once both answer `/-/ready`; stop both at exit.

    `ports` (Alertmanager's, Prometheus's) are chosen free when not given.

    Raises `AlertingUnavailable` when a binary is missing or a process does not get ready."""
    missing = missing_binaries()
    if missing:
        raise AlertingUnavailable(f"not installed: {', '.join(missing)} (Debian packages)")
    am_port, prom_port = ports or (_free_port(), _free_port())
    am_argv, prom_argv = _write_configs(
        workdir,
        (am_port, prom_port),
        metrics_url=metrics_url,
        webhook_url=webhook_url,
        token=token,
        alerts=alerts,
        timings=timings,
    )
    async with AsyncExitStack() as stack:
        alertmanager_url = await stack.enter_async_context(
            _process(workdir, "alertmanager", am_argv, am_port)
        )
        prometheus_url = await stack.enter_async_context(
            _process(workdir, "prometheus", prom_argv, prom_port)
        )
        yield AlertingStack(prometheus_url=prometheus_url, alertmanager_url=alertmanager_url)


def _write_configs(
    workdir: Path,
    ports: tuple[int, int],
    *,
    metrics_url: str,
    webhook_url: str,
    token: str,
    alerts: Collection[str] | None,
    timings: Timings,
) -> tuple[list[str], list[str]]:
    """Write the token file, rules and both configurations into `workdir`; the two command lines."""
    am_port, prom_port = ports
    workdir.mkdir(parents=True, exist_ok=True)
    token_file = workdir / "opsbot-token"
    token_file.write_text(token, "utf-8")
    token_file.chmod(0o600)
    am_config = alertmanager_config(webhook_url=webhook_url, token_file=token_file, timings=timings)
    seed_rules = yaml.safe_load(SEED_RULES.read_text("utf-8"))
    rules_file = _write_yaml(
        workdir / "rules.yml", quick_rules(seed_rules, rule_for=timings.rule_for, alerts=alerts)
    )
    prom_config = prometheus_config(
        metrics_url=metrics_url, alertmanager=f"127.0.0.1:{am_port}", rules_file=rules_file, timings=timings
    )
    return _alertmanager_argv(workdir, am_port, am_config), _prometheus_argv(workdir, prom_port, prom_config)


def _alertmanager_argv(workdir: Path, port: int, config: dict[str, Any]) -> list[str]:
    return [
        BINARIES["alertmanager"],
        f"--config.file={_write_yaml(workdir / 'alertmanager.yml', config)}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.external-url=http://127.0.0.1:{port}",
        # A single Alertmanager: no gossip port, no waiting for peers before notifying.
        "--cluster.listen-address=",
    ]


def _prometheus_argv(workdir: Path, port: int, config: dict[str, Any]) -> list[str]:
    return [
        BINARIES["prometheus"],
        f"--config.file={_write_yaml(workdir / 'prometheus.yml', config)}",
        f"--storage.tsdb.path={workdir / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        # Links in alerts (generatorURL, externalURL) point where this process really listens.
        f"--web.external-url=http://127.0.0.1:{port}",
    ]


@asynccontextmanager
async def _process(workdir: Path, name: str, argv: list[str], port: int) -> AsyncIterator[str]:
    """Run `argv` with its output in `workdir/<name>.log`, yield its URL once ready, stop it at exit."""
    url = f"http://127.0.0.1:{port}"
    with (workdir / f"{name}.log").open("wb") as output:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=output, stderr=output)
        try:
            await _wait_ready(proc, url, workdir / f"{name}.log")
            log.info("alerting_process_started", process=name, url=url)
            yield url
        finally:
            await _stop(proc)


async def _wait_ready(proc: asyncio.subprocess.Process, url: str, log_file: Path) -> None:
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while True:
            if proc.returncode is not None:
                raise AlertingUnavailable(f"{log_file.stem} exited ({proc.returncode}): {_tail(log_file)}")
            with suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(f"{url}/-/ready") as response:
                    if response.status == 200:
                        return
            if asyncio.get_running_loop().time() > deadline:
                raise AlertingUnavailable(f"{log_file.stem} not ready at {url} after {START_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.1)


def _tail(log_file: Path) -> str:
    return log_file.read_text("utf-8", errors="replace")[-600:]


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            with suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


# --- the demo: alerts arrive shortly after start ---------------------------------------------------

ROUTES_EXAMPLE = DEPLOY / "alert-routes.example.yml"
DEMO_TIMINGS = Timings(interval="2s", rule_for="5s", group_wait="2s", group_interval="5s")
# The alert the guide's story is about goes where the guide is; the rest to #alerts.
STORY_ROUTE = "db-connection-leak"
STAND_IN_SAMPLE = "db-leak"
# Where deploy/ was not installed with the code: the story's route alone.
FALLBACK_ROUTES: dict[str, Any] = {
    "routes": [
        {
            "name": STORY_ROUTE,
            "matchers": ['alertname="DatabaseConnectionLeak"'],
            "channel": "alerts",
            "runbook": "db.connections",
            "declare": "offer",
        }
    ],
    "default": {"channel": "alerts", "declare": "never"},
}


def demo_routes(example: dict[str, Any], *, story_channel: str, alerts_channel: str) -> dict[str, Any]:
    """The example routes for the demo: only the story's alert in `story_channel`, and nothing declares
    an incident by itself (`auto` becomes `offer`), so the walkthrough's incident stays the only one."""
    routes = [
        {
            **route,
            "channel": story_channel if route["name"] == STORY_ROUTE else alerts_channel,
            "declare": "offer" if route.get("declare") == "auto" else route.get("declare", "never"),
        }
        for route in example["routes"]
    ]
    return {"routes": routes, "default": {**example["default"], "channel": alerts_channel}}


class DemoAlerts:
    """The demo's alert source: real Prometheus and Alertmanager when installed, else a stand-in.

    Build it before the bot (`plan`: token, routes file, ports) so the bot's settings name them, then
    enter `delivering(...)` once the bot listens: the source starts in the background and `ready` is
    set when `source` says what is sending."""

    def __init__(
        self, workdir: Path, *, story_channel: str, alerts_channel: str, real: bool | None = None
    ) -> None:
        self.workdir = workdir
        self.token = secrets.token_urlsafe(24)
        shipped = ROUTES_EXAMPLE.is_file() and SEED_RULES.is_file() and ALERTMANAGER_CONFIG.is_file()
        example = yaml.safe_load(ROUTES_EXAMPLE.read_text("utf-8")) if shipped else FALLBACK_ROUTES
        self.routes_file = _write_yaml(
            workdir / "alert-routes.yml",
            demo_routes(example, story_channel=story_channel, alerts_channel=alerts_channel),
        )
        # `real` None: real Prometheus and Alertmanager when installed (with the shipped rules and
        # configuration), else the stand-in.
        self.real = shipped and not missing_binaries() if real is None else real
        self.ports = (_free_port(), _free_port())
        self.alertmanager_url = f"http://127.0.0.1:{self.ports[0]}" if self.real else None
        self.receiver_url = ""
        self.source = "starting"
        self.ready = asyncio.Event()

    def bot_settings(self) -> dict[str, str]:
        """Settings for the demo's bot: the Alertmanager token, the routes, where to silence."""
        settings = {
            "OPSBOT_ALERT_TOKEN_ALERTMANAGER": self.token,
            "OPSBOT_ALERT_ROUTES": str(self.routes_file),
        }
        if self.alertmanager_url is not None:
            settings["OPSBOT_ALERTMANAGER_URL"] = self.alertmanager_url
        return settings

    @asynccontextmanager
    async def delivering(self, *, bot_url: str, metrics_url: str) -> AsyncIterator[DemoAlerts]:
        """Start the source in the background (the demo does not wait for it); stop it at exit."""
        self.receiver_url = f"{bot_url}/alerts/alertmanager"
        task = asyncio.create_task(self._deliver(metrics_url))
        try:
            yield self
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _deliver(self, metrics_url: str) -> None:
        if self.real:
            try:
                async with alerting_stack(
                    workdir=self.workdir / "alerting",
                    metrics_url=metrics_url,
                    webhook_url=self.receiver_url,
                    token=self.token,
                    ports=self.ports,
                    timings=DEMO_TIMINGS,
                ) as stack:
                    self._announce(
                        f"Real Prometheus ({stack.prometheus_url}) and Alertmanager "
                        f"({stack.alertmanager_url}) fire the seed rules at the sick system into opsbot."
                    )
                    await asyncio.Event().wait()
            except (AlertingUnavailable, OSError) as exc:
                log.warning("demo_alerting_unavailable", reason=str(exc)[:300])
                self.alertmanager_url = None
        await self._stand_in()

    def _announce(self, source: str) -> None:
        self.source = source
        self.ready.set()

    async def _stand_in(self) -> None:
        """One Alertmanager-format notification of the story's alert, posted like Alertmanager would."""
        self._announce(
            "STAND-IN alert sender (Prometheus/Alertmanager not installed): it posts one "
            "Alertmanager-format DatabaseConnectionLeak notification."
        )
        body = alertmanager_notification(STAND_IN_SAMPLE)
        headers = {"Authorization": f"Bearer {self.token}"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            for _ in range(5):
                with suppress(aiohttp.ClientError, TimeoutError):
                    async with session.post(self.receiver_url, json=body, headers=headers) as response:
                        if response.status == 200:
                            return
                        log.warning("demo_stand_in_refused", status=response.status)
                await asyncio.sleep(2)

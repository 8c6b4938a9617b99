"""The demo host: a directory of stand-in programs and a small fake filesystem root.

Stand-ins are always used for the programs that act on infrastructure — `systemctl`,
`journalctl`, `docker`, `kubectl`, `git`, `alembic`, `npm`, `pip`, `pytest` and the site scripts
(`deploy.sh`, `switchover.sh`, `backup-db.sh`) — even when the real program is installed: the output is then
deterministic, and a demo or test can never restart a real service, prune real images or touch a
real repository. `sleep` is a stand-in too, so a sequence that waits (runbook 8) does not wait,
and so is `df`, whose real answer (this machine's disks) could never show a full filesystem on
demand. Harmless read-only tools (`free`, `ps`, `uptime`, `grep`, `find`, `du`, `ls`, and
`gunzip`, which the catalogue only runs with `-t`) are the machine's real ones.

Each stand-in is a small POSIX sh script that prints realistic output for the argv the runbooks
use (sick or healthy, read from a state file) and appends its argv to `calls.log`, so a test can
see which action ran. Finer states are knobs (`HostLayout.set_knob`, see `KNOBS`): one file per
knob, read by the stand-ins, overriding what sick or healthy would say — a container's state, a
unit's, the Docker daemon, the root filesystem's use, a second alembic head, a secret in git.

The fake root holds the log files and backups the runbooks read by paths relative to the host
target's working directory (`var/log/...`, `backups/...`): production
points that directory at `/`, the demo at `HostLayout.root`.
"""

from __future__ import annotations

import gzip
import os
import shlex
import stat
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REAL_PROGRAMS = ("free", "ps", "uptime", "grep", "find", "du", "ls", "gunzip")
DAY_S = 86_400


@dataclass(frozen=True)
class HostLayout:
    """Where the demo host lives: stand-in bin directory, fake root, state file, knobs and call log."""

    bin_dir: Path
    root: Path
    state_file: Path
    calls_log: Path
    knobs_dir: Path

    @property
    def stand_ins(self) -> list[str]:
        return sorted(path.name for path in self.bin_dir.iterdir())

    @property
    def allowed_programs(self) -> list[str]:
        """Every program the `host` target allows: the stand-ins and the real read-only tools."""
        return sorted({*self.stand_ins, *REAL_PROGRAMS})

    def set_sick(self, sick: bool) -> None:
        self.state_file.write_text("sick\n" if sick else "healthy\n", encoding="utf-8")

    def set_knob(self, name: str, value: str) -> None:
        """Override one detail the stand-ins report, whatever sick/healthy says (see `KNOBS`)."""
        if name.split(":", 1)[0] not in KNOBS:
            raise ValueError(f"unknown host knob {name!r} (knobs: {', '.join(KNOBS)})")
        self.knobs_dir.mkdir(parents=True, exist_ok=True)
        (self.knobs_dir / name).write_text(value + "\n", encoding="utf-8")

    def clear_knobs(self) -> None:
        """Back to what sick/healthy alone says."""
        if self.knobs_dir.is_dir():
            for path in self.knobs_dir.iterdir():
                path.unlink()

    def calls(self) -> list[str]:
        """The argv lines the stand-ins were called with, oldest first."""
        if not self.calls_log.exists():
            return []
        return self.calls_log.read_text(encoding="utf-8").splitlines()


# What each knob means; `container:<service>` and `unit:<unit>` take the name after the colon.
KNOBS: dict[str, str] = {
    "container": "a compose service's container: healthy | unhealthy | starting | running | exited",
    "unit": "a systemd unit: active | failed | inactive",
    "docker_daemon": "up | down (docker info fails while down)",
    "disk_root_pct": "use % df reports for /",
    "alembic": "ok | broken (alembic current fails) | two_heads",
    "secret_commits": "none | some (git log over *.env* / *.key finds a commit)",
}

# --- stand-in bodies: `case "$*"` over the argv the catalogue uses --------------------------------

_SYSTEMCTL = r"""
unit_state=$(knob "unit:$2" active active)
case "$1" in
  is-active) echo "$unit_state"; [ "$unit_state" = active ] || exit 3 ;;
  status)
    echo "* $2.service - $2"
    echo "     Loaded: loaded (/lib/systemd/system/$2.service; enabled; preset: enabled)"
    if [ "$unit_state" != active ]; then
      echo "     Active: $unit_state (Result: exit-code) since $(date -u '+%a %Y-%m-%d %H:%M:%S UTC')"
      exit 3
    elif [ "$STATE" = sick ]; then
      echo "     Active: active (running) since $(date -u '+%a %Y-%m-%d %H:%M:%S UTC'); 3h ago"
      echo "   Main PID: 4242 (python3)"
      echo "     Memory: 1.4G"
      echo "$(date -u '+%b %d %H:%M:%S') host $2[4242]: ERROR connection pool exhausted (60/60)"
    else
      echo "     Active: active (running) since $(date -u '+%a %Y-%m-%d %H:%M:%S UTC'); 3h ago"
      echo "   Main PID: 4242 (python3)"
      echo "     Memory: 310.0M"
    fi ;;
  restart|start|stop|reload) : ;;
  *) echo "systemctl (demo): unsupported: $*" >&2; exit 1 ;;
esac
"""

_JOURNALCTL = r"""
now=$(date -u '+%b %d %H:%M:%S')
echo "$now host floyo-backend[5150]: INFO request GET /health 200"
if [ "$STATE" = sick ]; then
  echo "$now host floyo-backend[5150]: ERROR TimeoutError: QueuePool limit of size 20 overflow 40"
  echo "$now host floyo-backend[5150]: ERROR request GET /api/items 500"
fi
"""

_DOCKER = r"""
ps_header='NAME                IMAGE              SERVICE     STATUS                    PORTS'
fmt='%-19s %-18s %-11s %-25s %s\n'
# Service $1's container: image, ports and state (its knob, else what sick/healthy says).
container() {
  case "$1" in
    api|backend) image=bot-api:latest; ports='0.0.0.0:8000->8000/tcp'
                 state=$(knob "container:$1" unhealthy healthy) ;;
    postgres|db) image=postgres:15; ports=5432/tcp; state=$(knob "container:$1" healthy healthy) ;;
    cache)       image=redis:7; ports=6379/tcp; state=$(knob "container:$1" running running) ;;
    *)           image="swipesavvy/$1:1.2.3"; ports=''; state=$(knob "container:$1" running running) ;;
  esac
  case "$state" in
    exited)   run=exited;  health='';       status='Exited (1) 4 minutes ago'; code=1 ;;
    running)  run=running; health='';       status='Up 3 hours'; code=0 ;;
    starting) run=running; health=starting; status='Up 8 seconds (health: starting)'; code=0 ;;
    *)        run=running; health=$state;   status="Up 3 hours ($state)"; code=0 ;;
  esac
}
ps_line() {
  container "$1"
  [ "$run" = exited ] && [ "$all" != yes ] && return
  printf "$fmt" "app-$1-1" "$image" "$1" "$status" "$ports"
}
# `docker compose ps --format json`: one JSON object per container and line (Compose >= 2.21).
ps_json() {
  container "$1"
  printf '{"Name":"app-%s-1","Image":"%s","Service":"%s",' "$1" "$image" "$1"
  printf '"State":"%s","Health":"%s","ExitCode":%s,"Status":"%s"}\n' "$run" "$health" "$code" "$status"
}
SERVICES='api postgres cache concierge rag guardrails'
all=no
log_lines() {
  t=$(date -u '+%Y-%m-%dT%H:%M:%SZ')
  if [ "$(knob "container:$1" running running)" = exited ]; then
    echo "$1-1  | $t ERROR Application startup failed. Exiting."
  else
    echo "$1-1  | $t INFO Uvicorn running on 0.0.0.0:8000"
  fi
  if [ "$STATE" = sick ]; then
    echo "$1-1  | $t ERROR together_api error status=503 latency_ms=2600"
    echo "$1-1  | $t WARNING circuit_breaker_state=open dependency=together_ai"
    echo "$1-1  | $t ERROR ConnectionError: database connection pool exhausted"
    echo "$1-1  | $t ERROR Exception in ASGI application: TimeoutError"
  else
    echo "$1-1  | $t INFO GET /health 200 4ms"
  fi
}
case "$*" in
  --version) echo "Docker version 24.0.7, build afdd53b" ;;
  info)
    echo "Client: Docker Engine - Community"
    echo " Version:    24.0.7"
    echo ""
    echo "Server:"
    if [ "$(knob docker_daemon up up)" = down ]; then
      echo "ERROR: Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
      exit 1
    fi
    echo " Containers: 6"
    echo "  Running: 6"
    echo " Server Version: 24.0.7" ;;
  "compose ps --all --format json") for s in $SERVICES; do ps_json "$s"; done ;;
  "compose ps --all --format json "*) ps_json "$6" ;;
  "compose ps")
    echo "$ps_header"; for s in $SERVICES; do ps_line "$s"; done ;;
  "compose ps "*) echo "$ps_header"; ps_line "$3" ;;
  "compose logs"*) for last; do :; done; log_lines "$last" ;;
  "logs"*) for last; do :; done; log_lines "$last" ;;
  "exec db df -h")
    container db
    if [ "$run" = exited ]; then
      echo "Error response from daemon: container app-db-1 is not running"; exit 1
    fi
    echo "Filesystem      Size  Used Avail Use% Mounted on"
    echo "overlay          50G   22G   26G  46% /"
    if [ "$STATE" = sick ]; then echo "/dev/sdb1       100G   93G  7.0G  93% /var/lib/postgresql/data"
    else echo "/dev/sdb1       100G   38G   62G  38% /var/lib/postgresql/data"; fi ;;
  "stats --no-stream"*)
    echo "CONTAINER ID   NAME        CPU %     MEM USAGE / LIMIT     MEM %"
    if [ "$STATE" = sick ]; then
      echo "3f2a1b0c9d8e   api         92.40%    1.45GiB / 2GiB        72.50%"
    else
      echo "3f2a1b0c9d8e   api         11.80%    310MiB / 2GiB         15.14%"
    fi
    echo "7c6b5a4d3e2f   postgres    18.20%    420MiB / 4GiB         10.25%"
    echo "1a2b3c4d5e6f   cache        2.10%     96MiB / 512MiB       18.75%" ;;
  "system df")
    echo "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE"
    echo "Images          42        6         18.4GB    15.2GB (82%)"
    echo "Containers      9         6         1.2GB     310MB (25%)"
    echo "Local Volumes   14        5         22.7GB    9.8GB (43%)"
    echo "Build Cache     120       0         6.1GB     6.1GB" ;;
  "system prune"*) echo "Total reclaimed space: 15.2GB" ;;
  "volume prune"*) echo "Total reclaimed space: 9.8GB" ;;
  "compose restart"*|"compose up"*|"compose stop"*|"compose down"*|"compose -f"*|restart*|stop*|start*) : ;;
  "pull "*) echo "$2: Pulling from library"; echo "Status: Image is up to date for $2" ;;
  "build "*) echo "Successfully tagged $3" ;;
  "run "*) echo "4f3e2d1c0b9a8f7e6d5c4b3a29180706f5e4d3c2b1a09f8e7d6c5b4a39281706" ;;
  *) echo "docker (demo): unsupported: $*" >&2; exit 1 ;;
esac
"""

_KUBECTL = r"""
case "$*" in
  "get deployments"*)
    echo "NAME         READY   UP-TO-DATE   AVAILABLE   AGE"
    if [ "$STATE" = sick ]; then echo "concierge    1/3     3            1           12d"
    else echo "concierge    3/3     3            3           12d"; fi
    echo "rag          2/2     2            2           12d"
    echo "guardrails   2/2     2            2           12d" ;;
  "logs"*)
    t=$(date -u '+%Y-%m-%dT%H:%M:%SZ')
    echo "$t INFO concierge ready"
    if [ "$STATE" = sick ]; then echo "$t ERROR together_api timeout after 30s"; fi ;;
  "rollout restart deployment "*) echo "deployment.apps/$4 restarted" ;;
  "scale deployment "*) echo "deployment.apps/$3 scaled" ;;
  *) echo "kubectl (demo): unsupported: $*" >&2; exit 1 ;;
esac
"""

_GIT = r"""
case "$*" in
  "log --oneline"*)
    n=10; case "$3" in -[0-9]*) n=${3#-} ;; esac
    printf '%s\n' \
      "9f1c2ab (HEAD -> main, tag: v1.2.3) Raise DB pool overflow and cache TTL" \
      "8e0b1a9 Reconciliation: batch status lookups" \
      "7d9a0f8 WebSocket: reconnect without backoff on auth refresh" \
      "6c8f9e7 Bump together-client to 2.4" \
      "5b7e8d6 (tag: v1.2.2) Release 1.2.2" \
      "4a6d7c5 Add ix_positions_user_id" \
      "3f5c6b4 Feature flag: rate-limit per minute" \
      "2e4b5a3 Guardrails: PII patterns for IBAN" \
      "1d3a4f2 (tag: v1.2.1) Release 1.2.1" \
      "0c2f3e1 Health: /ready checks Redis" | head -n "$n" ;;
  "diff --stat"*)
    echo " app/db/session.py            | 14 +++++++-------"
    echo " app/websocket/reconnect.py   | 22 ++++++++++++----------"
    echo " config/settings.py           |  4 ++--"
    echo " 3 files changed, 21 insertions(+), 19 deletions(-)" ;;
  "log --all"*)
    if [ "$(knob secret_commits none none)" != none ]; then
      echo "4b1e0c2 refs/heads/old-config Add .env.production for the staging box"
    fi ;;
  "pull"*) echo "Already up to date." ;;
  "checkout "*) echo "HEAD is now at $2" ;;
  "diff --name-only"*) if [ "$STATE" = sick ]; then echo "config/settings.py"; fi ;;
  *) echo "git (demo): unsupported: $*" >&2; exit 1 ;;
esac
"""

_ALEMBIC = r"""
migrations=$(knob alembic ok ok)
case "$1" in
  current) echo "INFO  [alembic.runtime.migration] Context impl PostgresqlImpl."
           if [ "$migrations" = broken ]; then
             echo "ERROR [alembic.util.messaging] Can't locate revision identified by 'c8d2e3f4a5b6'"
             exit 1
           fi
           echo "b7c1d2e3f4a5 (head)" ;;
  heads) echo "b7c1d2e3f4a5 (head)"
         if [ "$migrations" = two_heads ]; then echo "d9e0f1a2b3c4 (head)"; fi ;;
  upgrade) echo "INFO  [alembic.runtime.migration] Running upgrade  -> b7c1d2e3f4a5" ;;
  downgrade) echo "INFO  [alembic.runtime.migration] Running downgrade b7c1d2e3f4a5 -> a6b0c1d2e3f4" ;;
  *) echo "alembic (demo): unsupported: $*" >&2; exit 1 ;;
esac
"""

_PYTEST = r"""
if [ "$STATE" = sick ]; then
  echo "FAILED $1 - AssertionError: GET /api/v1/health returned 503"
  echo "1 failed, 1 passed in 0.42s"; exit 1
fi
echo "2 passed in 0.31s"
"""
_NPM = r"""echo "npm (demo): $*"; echo "build finished" """
_PIP = r"""echo "pip (demo): $*"; echo "Successfully installed requirements" """
# The seed's `sleep 60` between stop and start (runbook 8): recorded, not waited out, so a demo
# or test of the emergency restart takes no minute.
_SLEEP = r""": """
_DF = r"""
root=$(knob disk_root_pct 93 41)
line() { printf '%-15s %5s %5s %5s %3s%% %s\n' "$@"; }
echo "Filesystem       Size  Used Avail Use% Mounted on"
line /dev/root 50G "$((root / 2))G" "$(((100 - root) / 2))G" "$root" /
line tmpfs 3.9G 0 3.9G 0 /dev/shm
line /dev/sdb1 200G 82G 118G 41 /var/lib/postgresql
"""

_DEPLOY = r"""echo "deploy (demo): $*"; echo "deployment finished" """
_SWITCHOVER = r"""echo "switchover (demo): traffic $*"; echo "switch complete" """
_BACKUP = r"""
file="$ROOT/backups/swipesavvy_dev_$(date -u +%Y%m%d_%H%M%S).sql.gz"
echo "-- demo dump $(date -u)" | gzip -c > "$file"
echo "backup written: ${file#"$ROOT"/}"
"""

STAND_INS: dict[str, str] = {
    "systemctl": _SYSTEMCTL,
    "journalctl": _JOURNALCTL,
    "docker": _DOCKER,
    "kubectl": _KUBECTL,
    "git": _GIT,
    "alembic": _ALEMBIC,
    "df": _DF,
    "deploy.sh": _DEPLOY,
    "switchover.sh": _SWITCHOVER,
    "backup-db.sh": _BACKUP,
    "sleep": _SLEEP,
    "npm": _NPM,
    "pytest": _PYTEST,
    "pip": _PIP,
}


def _script(name: str, body: str, layout: HostLayout) -> str:
    return (
        "#!/bin/sh\n"
        f"# opsbot demo stand-in for `{name}`: canned output, changes nothing outside the demo dir.\n"
        f"ROOT={shlex.quote(str(layout.root))}\n"
        f"STATE=$(cat {shlex.quote(str(layout.state_file))} 2>/dev/null || echo healthy)\n"
        f"KNOBS={shlex.quote(str(layout.knobs_dir))}\n"
        "# knob NAME SICK HEALTHY: the knob file's value, else what sick or healthy says.\n"
        'knob() { if [ -f "$KNOBS/$1" ]; then cat "$KNOBS/$1"; '
        'elif [ "$STATE" = sick ]; then echo "$2"; else echo "$3"; fi; }\n'
        f"printf '%s\\n' \"{name} $*\" >> {shlex.quote(str(layout.calls_log))}\n"
        f"{body.strip()}\n"
    )


_SLOW_STATEMENT = "SELECT * FROM reconciliation_logs WHERE user_id = $1 ORDER BY created_at DESC LIMIT 100"


def _log_lines(now: datetime) -> dict[str, list[str]]:
    def at(minutes: int) -> str:
        return (now - timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S")

    backend = [f"{at(60 - i)} INFO request GET /api/v1/reconciliation/status 200" for i in range(20)]
    backend += [f"{at(40 - i)} ERROR sqlalchemy.exc.TimeoutError: QueuePool limit reached" for i in range(8)]
    backend += [f"{at(30 - i)} ERROR ConnectionError: redis timeout after 5s" for i in range(5)]
    backend += [f"{at(25)} ERROR ValidationError: amount must be positive"]
    backend += [f"{at(20)} ERROR MemoryError: out of memory in worker 3"]
    delays = [1, 2, 4, 8, 16, 30, 1, 1, 1, 1, 1, 1]
    backend += [f"{at(15)} WARNING ws client=c{i} Reconnecting in {d}s" for i, d in enumerate(delays * 6)]
    app = [f"{at(50 - i)} INFO floyo request ok" for i in range(10)]
    app += [f"{at(30 - i)} ERROR floyo.api handler failed: 500 Internal Server Error" for i in range(12)]
    app += [f"{at(5)} WARNING memory usage 1.4GB above soft limit"]
    postgres = [
        f"{at(10 - i)} UTC [4711] LOG:  duration: {1200 + 97 * i}.5 ms  statement: {_SLOW_STATEMENT}"
        for i in range(6)
    ]
    return {
        "var/log/swipesavvy/backend.log": backend,
        "var/log/floyo/app.log": app,
        "var/log/postgresql/postgresql.log": postgres,
    }


def build_host(workdir: Path, *, sick: bool = True) -> HostLayout:
    """Create the stand-in bin directory and the fake root under `workdir`."""
    workdir = workdir.resolve()
    layout = HostLayout(
        bin_dir=workdir / "bin",
        root=workdir / "root",
        state_file=workdir / "host-state",
        calls_log=workdir / "calls.log",
        knobs_dir=workdir / "knobs",
    )
    layout.bin_dir.mkdir(parents=True, exist_ok=True)
    layout.set_sick(sick)
    for name, body in STAND_INS.items():
        path = layout.bin_dir / name
        path.write_text(_script(name, body, layout), encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    now = datetime.now(UTC)
    for relative, lines in _log_lines(now).items():
        path = layout.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    backups = layout.root / "backups"
    backups.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%d")
    dump = ("-- PostgreSQL database dump\n" + "INSERT INTO users VALUES (1);\n" * 400).encode()
    for name in (f"swipesavvy_dev_{stamp}_020000.sql.gz", f"db_{stamp}.sql.gz"):
        (backups / name).write_bytes(gzip.compress(dump))
    old = backups / f"swipesavvy_dev_{(now - timedelta(days=40)).strftime('%Y%m%d')}_020000.sql.gz"
    old.write_bytes(gzip.compress(dump))
    forty_days_ago = time.time() - 40 * DAY_S
    os.utime(old, (forty_days_ago, forty_days_ago))
    return layout

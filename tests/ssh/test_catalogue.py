"""A catalogue host runbook, unchanged, says the same over SSH as locally; a broken link is unknown."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.probes import ProbeRunner
from bot.render.diagnosis import diagnosis_blocks
from bot.runbooks.catalogue import load_catalogue
from bot.runbooks.engine import diagnose
from bot.runbooks.model import Runbook
from bot.targets import Targets
from tests.probes.conftest import make_targets
from tests.ssh.sshd import Sshd, generate_key, known_hosts_line

Runners = Callable[[Targets], ProbeRunner]
ROOT = Path(__file__).resolve().parents[2]
CHECKS = ("df", "logs_size", "old_backups")
PROGRAMS = ["df", "du", "find", "docker"]


@pytest.fixture(scope="module")
def disk() -> Runbook:
    """host.disk from the shipped catalogue, with only the checks that run on the host itself."""
    runbook = load_catalogue(ROOT / "runbooks").get("host.disk")
    assert runbook is not None
    checks = [check for check in runbook.checks if check.id in CHECKS]
    assert [check.id for check in checks] == list(CHECKS)
    return runbook.model_copy(update={"checks": checks, "actions": []})


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    """A host's cwd as the runbook expects it: log directories, and two backups, one 40 days old."""
    for directory in ("var/log/swipesavvy", "var/log/floyo", "var/log/postgresql", "backups"):
        (tmp_path / directory).mkdir(parents=True)
    (tmp_path / "var/log/floyo/app.log").write_text("x" * 100_000)
    old, new = tmp_path / "backups/old.sql", tmp_path / "backups/new.sql"
    old.write_text("old")
    new.write_text("new")
    past = time.time() - 40 * 86400
    os.utime(old, (past, past))
    return tmp_path


def verdicts(outcomes: list[Any]) -> list[tuple[str, str, object, object]]:
    return [(o.check_id, o.status, o.value, o.result.rows if o.check_id != "df" else None) for o in outcomes]


async def test_host_disk_says_the_same_over_ssh_as_locally(
    sshd: Sshd, runner_for: Runners, disk: Runbook, host_dir: Path
) -> None:
    # `docker` is on no PATH here: allowed only where its name is not resolved, over SSH.
    local = make_targets(host={"kind": "command", "allowed_programs": PROGRAMS[:3], "cwd": str(host_dir)})
    remote = make_targets(host=sshd.target(allowed_programs=PROGRAMS, cwd=str(host_dir)))
    here = await diagnose(disk, {}, runner_for(local))
    there = await diagnose(disk, {}, runner_for(remote))
    assert verdicts(there.checks) == verdicts(here.checks)
    assert [o.status for o in there.checks] == ["ok", "ok", "warn"]
    assert there.checks[2].result.rows == [["backups/old.sql"]]
    assert there.overall == here.overall == "warn"


async def test_a_host_key_mismatch_is_unknown_on_the_card_never_ok(
    sshd: Sshd, runner_for: Runners, disk: Runbook, host_dir: Path
) -> None:
    impostor = known_hosts_line(generate_key(), sshd.port)
    targets = make_targets(host=sshd.target(allowed_programs=PROGRAMS, ssh={"known_hosts": impostor}))
    with capture_logs() as logs:
        diagnosis = await diagnose(disk, {}, runner_for(targets))
    # One attempt to connect answers the three checks that run at once.
    assert [e["event"] for e in logs].count("ssh_connect_failed") == 1
    assert diagnosis.overall == "unknown"
    reason = "cannot reach host over SSH: host key mismatch (not a key pinned in known_hosts)"
    assert [(o.status, o.reason) for o in diagnosis.checks] == [("unknown", reason)] * 3
    blocks, _ = diagnosis_blocks(diagnosis, disk)
    card = json.dumps(blocks, ensure_ascii=False)
    assert "Disk space running low — UNKNOWN" in card
    assert "cannot reach host over SSH: host key mismatch" in card
    assert "OK" not in card

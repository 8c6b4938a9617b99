"""The production image carries only what `opsbot serve` runs. Docker cannot build here, so this
test runs the Dockerfile's build stage by hand (the same COPY lines, the same `rm`, `pip wheel`),
inspects the wheel, and imports the serving path from it alone; the final stage's promises are read
off the Dockerfile."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")


def build_stage(tmp: Path) -> Path:
    """Follow the build stage: its COPY lines and RUN line, in a scratch directory."""
    stage = DOCKERFILE.split("\nFROM ", 2)[1]
    src = tmp / "src"
    src.mkdir()
    for sources, _dest in re.findall(r"^COPY (?!--from)(.+?) (\S+)$", stage, re.M):
        for name in sources.split():
            origin = REPO / name
            target = src / name
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(origin, target)
    (run_line,) = re.findall(r"^RUN (.+)$", stage, re.M)
    removed = re.findall(r"rm -rf (\S+)", run_line)
    for path in removed:
        shutil.rmtree(src / path)
    wheels = tmp / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), "."],
        cwd=src,
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("opsbot-*.whl")
    return wheel


def test_the_wheel_has_no_demo_no_localslack_and_serves_alone(tmp_path: Path) -> None:
    wheel = build_stage(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("bot/server.py") for n in names)
    assert any(n.startswith("handlers/") for n in names)
    assert not [n for n in names if n.startswith(("bot/demo/", "localslack/"))]
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    # -S: no site hooks, so the checkout's editable install cannot leak in; only the wheel and the
    # third-party packages are importable.
    probe = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import bot.server, bot.cli, bot.app, bot.runtime, handlers\n"
        "assert bot.server.__file__.startswith(sys.argv[1]), bot.server.__file__\n"
        "try:\n    import bot.demo\nexcept ModuleNotFoundError:\n    print('no demo')\n"
        "from typer.testing import CliRunner\n"
        "result = CliRunner().invoke(bot.cli.cli, ['demo'])\n"
        "assert result.exit_code == 2 and 'not part of this installation' in result.output, result.output\n"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(unpacked), sysconfig.get_paths()["purelib"]],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no demo"


def test_the_final_stage_runs_serve_as_a_numeric_non_root_user_with_a_healthcheck() -> None:
    final = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    (user,) = re.findall(r"^USER (\S+)$", final, re.M)
    assert user.isdigit() and int(user) != 0
    assert re.search(r"^HEALTHCHECK .*\n.*/health", final, re.M)
    assert '\nENTRYPOINT ["opsbot"]' in final and '\nCMD ["serve"]' in final
    assert "[dev" not in DOCKERFILE and "[demo" not in DOCKERFILE

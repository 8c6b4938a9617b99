"""The per-seed coverage figures in runbooks/README.md are the ones the command counts today."""

from __future__ import annotations

from pathlib import Path

from bot.runbooks.catalogue import Catalogue
from bot.runbooks.coverage import count, in_readme, markdown

README = Path(__file__).resolve().parents[2] / "runbooks" / "README.md"


def test_the_readme_table_is_what_the_catalogue_counts(catalogue: Catalogue) -> None:
    assert in_readme(README) == markdown(count(catalogue, README)), (
        "runbooks/README.md coverage table is stale: run `opsbot runbooks coverage --markdown`"
    )


def test_every_seed_is_counted_and_the_counts_add_up(catalogue: Catalogue) -> None:
    rows = count(catalogue, README)
    assert [r.seed for r in rows] == ["000", "001", "002", "003", "004"]
    assert sum(r.runbooks for r in rows) == len(catalogue)
    assert sum(r.checks for r in rows) == sum(len(rb.checks) for rb in catalogue)
    assert all(r.procedures > r.left_out for r in rows)


def test_a_left_out_row_and_a_new_check_change_the_counts(catalogue: Catalogue, tmp_path: Path) -> None:
    before = {r.seed: r for r in count(catalogue, README)}
    readme = tmp_path / "README.md"
    text = README.read_text()
    last_row = text.index("| 004 | Runbook 14")
    readme.write_text(
        text[:last_row] + "| 004 | Something new | left out: a test says so |\n" + text[last_row:]
    )
    after = {r.seed: r for r in count(catalogue, readme)}
    assert after["004"].left_out == before["004"].left_out + 1
    assert after["004"].procedures == before["004"].procedures + 1

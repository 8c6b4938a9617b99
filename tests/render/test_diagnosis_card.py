"""The diagnosis card: every status as a word, values as words, and nothing cut without the whole
text going to the thread (`overflow` set, `full_output` uncut)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.render.blocks import MAX_BLOCKS
from bot.render.diagnosis import diagnosis_blocks, diagnosis_text, full_output
from bot.render.table import CELL_MAX, LINE_MAX, fit_table
from bot.runbooks.engine import CheckOutcome, Diagnosis, worst
from bot.runbooks.model import Runbook

STATS_HEADER = (
    "CONTAINER ID   NAME            CPU %     MEM USAGE / LIMIT     MEM %     NET I/O           "
    "BLOCK I/O         PIDS"
)
STATS_ROW = (
    "3f1c9a2b7d4e   swipesavvy-api  187.45%   1.43GiB / 2GiB        71.52%    1.2GB / 880MB     "
    "52.4MB / 0B       48"
)


def book(check_ids: list[str], **extra: Any) -> Runbook:
    checks = [
        {
            "id": check_id,
            "title": f"Check {check_id}",
            "probe": {"kind": "postgres", "target": "app_db", "sql": "SELECT 1 AS n"},
            "show_rows": True,
        }
        for check_id in check_ids
    ]
    return Runbook.model_validate(
        {
            "id": "test.card",
            "title": "Card test",
            "summary": "what the card shows and cuts",
            "source": {"seed": "000_e2e647c03db5623f.txt", "section": "Database Connection Pool Leaks"},
            "checks": checks,
            **extra,
        }
    )


def outcome(check_id: str, status: str = "ok", **fields: Any) -> CheckOutcome:
    result = {"status": "ok", "values": {}, "latency_ms": 3.0}
    result.update(fields.pop("result", {}))
    return CheckOutcome.model_validate(
        {"check_id": check_id, "title": f"Check {check_id}", "status": status, "result": result, **fields}
    )


def diagnosis(*outcomes: CheckOutcome) -> Diagnosis:
    now = datetime.now(UTC)
    return Diagnosis(
        run_id="run-test",
        runbook_id="test.card",
        runbook_version=1,
        title="Card test",
        params={},
        overall=worst([o.status for o in outcomes]),
        started_at=now,
        finished_at=now,
        checks=list(outcomes),
        suggestions=[],
    )


def card(d: Diagnosis, runbook: Runbook) -> tuple[str, bool, list[dict[str, Any]]]:
    blocks, overflow = diagnosis_blocks(d, runbook)
    text = "\n".join(
        element.get("text", "")
        for block in blocks
        for element in [block.get("text") or {}, *block.get("elements", [])]
        if isinstance(element, dict) and isinstance(element.get("text"), str)
    )
    return text, overflow, blocks


def test_every_status_reads_as_a_word_and_values_as_words() -> None:
    runbook = book(["a", "b", "c", "d"])
    d = diagnosis(
        outcome("a", "ok", value=True, threshold="critical if no"),
        outcome("b", "warn", value=61.456, unit="%", threshold="warning if > 60 %"),
        outcome("c", "crit", value=False, threshold="critical if no"),
        outcome("d", "unknown", reason="cannot connect: Connection refused", threshold="critical if > 5"),
    )
    text, overflow, _ = card(d, runbook)
    assert "🔴 Card test — CRITICAL" in text
    assert "🟢 OK · *Check a* — *yes*  _(critical if no)_" in text
    assert "🟡 WARNING · *Check b* — *61.46* %  _(warning if > 60 %)_" in text
    assert "🔴 CRITICAL · *Check c* — *no*  _(critical if no)_" in text
    assert "⚪ UNKNOWN · *Check d* — cannot connect: Connection refused  _(critical if > 5)_" in text
    assert "*Could not see:* Check d" in text
    assert "True" not in text and "False" not in text
    assert not overflow
    assert diagnosis_text(d) == "🔴 Card test: CRITICAL"
    assert diagnosis_text(d, unattended=True) == "🔴 Card test: CRITICAL — ⚠️ could not see: Check d"
    whole = full_output(d, runbook)
    assert "## 🟢 OK · Check a\nvalue: yes" in whole
    assert "## ⚪ UNKNOWN · Check d\ncould not measure: cannot connect: Connection refused" in whole


def test_a_manual_only_runbook_stays_ok() -> None:
    runbook = Runbook.model_validate(
        {
            "id": "test.manual",
            "title": "Manual checklist",
            "summary": "steps a person does",
            "source": {"seed": "000_e2e647c03db5623f.txt", "section": "Database Connection Pool Leaks"},
            "manual": ["Open the status page and post an update"],
        }
    )
    d = diagnosis()
    text, overflow, _ = card(d, runbook)
    assert d.overall == "ok"
    assert "🟢 Manual checklist — OK" in text
    assert "Could not see" not in text
    assert not overflow


def test_docker_stats_lines_fit_whole_and_a_longer_line_goes_whole_to_the_thread() -> None:
    runbook = book(["stats"])
    rows = [[STATS_HEADER], [STATS_ROW]]
    whole_lines = diagnosis(outcome("stats", result={"columns": ["output"], "rows": rows}))
    text, overflow, _ = card(whole_lines, runbook)
    assert len(STATS_ROW) > CELL_MAX, "the 60-character cell limit used to cut MEM %, NET I/O, PIDS"
    assert STATS_ROW in text and "PIDS" in text
    assert not overflow

    long_line = STATS_ROW + "   " + "x" * LINE_MAX
    cut = diagnosis(outcome("stats", result={"columns": ["output"], "rows": [[STATS_HEADER], [long_line]]}))
    text, overflow, blocks = card(cut, runbook)
    assert long_line not in text
    assert long_line[: LINE_MAX - 1] + "…" in text
    assert overflow
    assert blocks[-1]["elements"][0]["text"].startswith("Some output did not fit here")
    assert long_line in full_output(cut, runbook)


def test_a_long_cell_in_a_wide_table_sets_overflow_and_is_whole_in_the_file() -> None:
    runbook = book(["locks"])
    query = (
        "SELECT * FROM orders WHERE customer_id = $1 AND created_at > now() - interval '30 days' FOR UPDATE"
    )
    rows = [[4242, "active", query]]
    d = diagnosis(outcome("locks", result={"columns": ["pid", "state", "query"], "rows": rows}))
    text, overflow, _ = card(d, runbook)
    assert query[: CELL_MAX - 1] + "…" in text and query not in text
    assert overflow
    assert query in full_output(d, runbook)
    fitted = fit_table(["pid", "state", "query"], rows, budget=1800)
    assert fitted.clipped and fitted.left == 0


def test_rows_left_out_and_a_probe_row_cap_set_overflow() -> None:
    runbook = book(["many", "capped"])
    many = [[f"session {i:04d} idle in transaction for 45 minutes"] for i in range(200)]
    d = diagnosis(
        outcome("many", result={"columns": ["output"], "rows": many}),
        outcome("capped", result={"columns": ["n"], "rows": [[1]], "truncated": True}),
    )
    text, overflow, _ = card(d, runbook)
    assert "more rows — full output in the thread" in text
    assert overflow
    whole = full_output(d, runbook)
    assert all(row[0] in whole for row in many)
    assert "(the probe's row cap was reached; more rows exist)" in whole

    capped_only = diagnosis(outcome("capped", result={"columns": ["n"], "rows": [[1]], "truncated": True}))
    assert card(capped_only, book(["capped"]))[1]


def test_a_long_reason_or_value_is_clipped_on_the_card_and_whole_in_the_file() -> None:
    runbook = book(["q", "v"])
    query = "sum(rate(" + "x" * 600 + "[5m]))"
    value = "y" * 900
    d = diagnosis(
        outcome("q", "unknown", reason=f"no series for `{query}`", threshold="critical if > 1"),
        outcome("v", "ok", value=value),
    )
    text, overflow, _ = card(d, runbook)
    assert query not in text and value not in text
    assert overflow
    whole = full_output(d, runbook)
    assert f"could not measure: no series for `{query}`" in whole
    assert f"value: {value}" in whole


def test_manual_steps_too_long_for_a_section_set_overflow_and_are_whole_in_the_file() -> None:
    steps = [f"Step {i}: " + "check the replica, the pooler and the dashboards again " * 6 for i in range(10)]
    runbook = book(["n"], manual=steps)
    d = diagnosis(outcome("n"))
    text, overflow, blocks = card(d, runbook)
    assert steps[-1] not in text
    assert overflow
    assert len(blocks) <= MAX_BLOCKS
    assert blocks[-1]["elements"][0]["text"].startswith("Some output did not fit here")
    whole = full_output(d, runbook)
    assert all(step in whole for step in steps)


def test_nothing_cut_means_no_overflow() -> None:
    runbook = book(["small"])
    d = diagnosis(
        outcome("small", result={"columns": ["pid", "state"], "rows": [[1, "idle"], [2, "active"]]})
    )
    _, overflow, blocks = card(d, runbook)
    assert not overflow
    assert "Some output did not fit" not in str(blocks)
